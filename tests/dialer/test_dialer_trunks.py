"""A trunk's channels as leases in the database (`dialer.trunks`), on SQLite and PostgreSQL;
and the trunks in settings."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.db import session_scope
from huifang.dialer import trunks
from huifang.settings import Settings, Trunk

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def take(
    engine: Engine, worker: str, want: int, *, at: datetime = NOW, carrying: Collection[int] = ()
) -> list[int]:
    with session_scope(engine) as db:
        return trunks.acquire(
            db, "pstn", channels=4, worker=worker, now=at, until=at + LEASE, want=want,
            carrying=carrying,
        )  # fmt: skip


@pytest.fixture
def trunk(engine: Engine) -> Engine:
    with session_scope(engine) as db:
        trunks.ensure_slots(db, "pstn", 4)
        trunks.ensure_slots(db, "pstn", 4)  # every worker does it at start: once is enough
    return engine


def test_workers_never_hold_more_channels_than_the_trunk_has(trunk: Engine) -> None:
    first, second = take(trunk, "a", 3), take(trunk, "b", 3)
    assert len(first) == 3 and len(second) == 1 and not set(first) & set(second)
    assert take(trunk, "c", 1) == []


def test_a_channel_given_back_is_taken_by_another_worker(trunk: Engine) -> None:
    held = take(trunk, "a", 4)
    with session_scope(trunk) as db:
        trunks.release(db, "pstn", held[:1], worker="a")
        trunks.release(db, "pstn", held[1:2], worker="b")  # not b's: stays a's
    assert take(trunk, "b", 4) == held[:1]


def test_a_lapsed_lease_frees_the_channel_for_others(trunk: Engine) -> None:
    held = take(trunk, "dead", 4)
    later = NOW + LEASE + timedelta(seconds=1)
    assert take(trunk, "alive", 4, at=NOW + LEASE - timedelta(seconds=1)) == []
    assert take(trunk, "alive", 4, at=later) == held


def test_a_worker_never_retakes_a_lapsed_channel_whose_call_it_carries(trunk: Engine) -> None:
    held = take(trunk, "a", 2)
    later = NOW + LEASE + timedelta(seconds=1)
    assert take(trunk, "a", 4, at=later, carrying=held[:1]) == sorted(
        [*held[1:], *(n for n in range(1, 5) if n not in held)]
    )


def test_renewing_keeps_a_lease_and_reports_channels_lost(trunk: Engine) -> None:
    held = take(trunk, "a", 2)
    with session_scope(trunk) as db:
        kept = trunks.renew(db, "pstn", held, worker="a", until=NOW + 2 * LEASE)
    assert kept == set(held)
    later = NOW + LEASE + timedelta(seconds=1)
    assert take(trunk, "b", 4, at=later) == [n for n in range(1, 5) if n not in held]
    with session_scope(trunk) as db:
        assert trunks.renew(db, "pstn", [*held, 99], worker="b", until=later + LEASE) == set()


def test_only_the_configured_channels_are_used(engine: Engine) -> None:
    with Session(engine) as db:
        trunks.ensure_slots(db, "pstn", 6)
        db.commit()
    assert len(take(engine, "a", 10)) == 4


def test_without_trunks_the_one_trunk_is_max_channels_and_calls_per_second() -> None:
    trunk = Settings(max_channels=12, calls_per_second=3).dial_trunk
    assert trunk == Trunk(name="default", channels=12, calls_per_second=3)


def test_the_worker_dials_through_the_trunk_named_or_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = [{"name": "a", "channels": 30}, {"name": "b", "channels": 60, "ami_host": "10.0.0.2"}]
    monkeypatch.setenv("HUIFANG_TRUNKS", json.dumps(listed))
    assert Settings().dial_trunk.name == "a"
    monkeypatch.setenv("HUIFANG_TRUNK", "b")
    assert Settings().dial_trunk == Trunk(name="b", channels=60, ami_host="10.0.0.2")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"trunk": "nowhere"}, "trunk"),
        ({"trunks": [Trunk(name="a", channels=1), Trunk(name="a", channels=2)]}, "trunks"),
        ({"trunk_heartbeat_seconds": 30, "trunk_lease_seconds": 30}, "trunk_heartbeat_seconds"),
    ],
)
def test_trunk_settings_that_cannot_work_are_refused_naming_the_field(
    options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**options)  # type: ignore[arg-type]


def test_an_asterisk_worker_dials_through_its_trunks_box() -> None:
    from huifang.telephony.asterisk.provider import AsteriskProvider

    box_b = Trunk(
        name="b", channels=60, calls_per_second=10, ami_host="10.0.0.2", ami_port=5039,
        channel_template="PJSIP/{number}@carrier-b",
    )  # fmt: skip
    settings = Settings(
        telephony_provider="asterisk", ami_secret="s3cret-enough", trunk="b",
        trunks=[Trunk(name="a", channels=30), box_b],
    )  # fmt: skip
    provider = AsteriskProvider.from_settings(settings)
    assert (provider._client.host, provider._client.port) == ("10.0.0.2", 5039)
    assert (provider.channel_template, provider.max_channels) == ("PJSIP/{number}@carrier-b", 60)
