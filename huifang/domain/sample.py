"""Realistic sample data for a city: a unit tree with Chinese names and incidents with
plausible sources, categories, phones and times. Deterministic for a given seed, streamed
so that a million rows cost no memory (the import benchmark uses it)."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlmodel import Session

from huifang.domain.models import Unit
from huifang.domain.units import create_unit

CITY = ("SZ", "市公安局")
BRANCHES = {
    "DC": ("东城分局", ["东华门派出所", "建国门派出所", "和平里派出所"]),
    "XC": ("西城分局", ["西长安街派出所", "新街口派出所", "月坛派出所"]),
    "NH": ("南湖分局", ["南湖派出所", "湖滨派出所", "长桥派出所", "望湖派出所"]),
    "BS": ("北山分局", ["北山派出所", "青龙派出所", "松林派出所"]),
    "GX": ("高新分局", ["科技园派出所", "软件园派出所", "创业路派出所"]),
}
CATEGORIES_110 = [
    ("求助", 22),
    ("纠纷", 18),
    ("交通事故", 12),
    ("噪音扰民", 10),
    ("盗窃", 9),
    ("电信诈骗", 8),
    ("家庭纠纷", 7),
    ("人员走失", 4),
    ("治安案件", 6),
    ("其他", 4),
]
CATEGORIES_12345 = [
    ("市政设施", 30),
    ("环境卫生", 25),
    ("物业管理", 20),
    ("交通出行", 15),
    ("其他", 10),
]
SOURCES = [("110", 82), ("12345", 14), ("12389", 2), ("window", 2)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "强",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
]
MOBILE_PREFIXES = [
    "138",
    "139",
    "136",
    "137",
    "135",
    "150",
    "151",
    "152",
    "158",
    "159",
    "186",
    "187",
    "188",
    "177",
    "199",
]
HEADER = [
    "source", "external_id", "occurred_at", "handled_at", "caller_phone", "caller_name",
    "unit", "officer", "category", "summary", "is_complaint",
]  # fmt: skip


def seed_units(session: Session) -> list[Unit]:
    """Create the sample city's unit tree; returns the stations (where incidents are handled)."""
    city = create_unit(session, code=CITY[0], name=CITY[1], level="bureau")
    stations: list[Unit] = []
    for code, (name, station_names) in BRANCHES.items():
        branch = create_unit(session, code=code, name=name, level="branch", parent=city)
        for index, station_name in enumerate(station_names, start=1):
            stations.append(
                create_unit(
                    session,
                    code=f"{code}{index:02d}",
                    name=station_name,
                    level="station",
                    parent=branch,
                )
            )
    return stations


def station_codes() -> list[str]:
    return [
        f"{code}{i:02d}" for code, (_, names) in BRANCHES.items() for i in range(1, len(names) + 1)
    ]


@dataclass(frozen=True, slots=True)
class SampleIncident:
    source: str
    external_id: str
    occurred_at: datetime
    handled_at: datetime
    caller_phone: str
    caller_name: str
    unit: str
    officer: str
    category: str
    summary: str
    is_complaint: bool


def generate_incidents(
    *,
    days: int,
    per_day: int,
    end: date,
    tz: ZoneInfo,
    seed: int = 110,
    repeat_callers: float = 0.03,
) -> Iterator[SampleIncident]:
    """`per_day` incidents on each of the `days` days ending with `end` (local dates).

    About `repeat_callers` of incidents come from a phone seen earlier the same day, as in
    real data (a citizen who calls twice), which exercises one-contact-per-phone-per-day.
    """
    rng = random.Random(seed)
    units = station_codes()
    sources, source_weights = zip(*SOURCES, strict=True)
    cats_110, w_110 = zip(*CATEGORIES_110, strict=True)
    cats_hot, w_hot = zip(*CATEGORIES_12345, strict=True)
    serial = 0
    for day_offset in range(days - 1, -1, -1):
        day = end - timedelta(days=day_offset)
        today_phones: list[str] = []
        for _ in range(per_day):
            serial += 1
            source = rng.choices(sources, source_weights)[0]
            category = rng.choices(*((cats_110, w_110) if source == "110" else (cats_hot, w_hot)))[
                0
            ]
            # calls peak in the evening; few at night
            hour = min(23, max(0, int(rng.gauss(15, 5))))
            occurred = datetime(
                day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=tz
            )
            handled = occurred + timedelta(minutes=rng.randint(15, 240))
            if today_phones and rng.random() < repeat_callers:
                phone = rng.choice(today_phones)
            else:
                phone = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
                today_phones.append(phone)
            unit = rng.choice(units)
            yield SampleIncident(
                source=source,
                external_id=f"{source}-{day:%Y%m%d}-{serial:07d}",
                occurred_at=occurred,
                handled_at=handled,
                caller_phone=phone,
                caller_name=rng.choice(SURNAMES)
                + rng.choice(GIVEN)
                + ("" if rng.random() < 0.5 else rng.choice(GIVEN)),
                unit=unit,
                officer=f"{rng.choice(SURNAMES)}警官{rng.randint(1, 99):02d}",
                category=category,
                summary=f"{category}：群众报称需要协助，民警到场处置。",
                is_complaint=source in ("12345", "12389") and rng.random() < 0.08,
            )


def write_incidents_csv(incidents: Iterator[SampleIncident], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(HEADER)
    count = 0
    for inc in incidents:
        writer.writerow(
            [
                inc.source, inc.external_id,
                inc.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), inc.handled_at.strftime("%Y-%m-%d %H:%M:%S"),
                inc.caller_phone, inc.caller_name, inc.unit, inc.officer, inc.category, inc.summary,
                "yes" if inc.is_complaint else "no",
            ]
        )  # fmt: skip
        count += 1
    return count
