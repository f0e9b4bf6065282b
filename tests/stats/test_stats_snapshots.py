"""The dashboard's precomputed months (`stats_snapshots`) hold exactly the figures the tables
give on the same data, are read only while fresh, and serve the trend as the tables do; on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.stats.periods import Period, months_ending
from huifang.stats.queries import (
    SNAPSHOT_MAX_AGE,
    computed_own_figures,
    dashboard_report,
    own_figures,
    refresh_snapshots,
    trend,
)
from tests.factories import make_incident
from tests.stats.stats_dataset import Dataset

TZ = ZoneInfo("Asia/Shanghai")


def _months(clock: FakeClock) -> list[Period]:
    this_month = Period.month_of(clock.now().astimezone(TZ).date())
    return [*months_ending(this_month, 13), this_month.year_ago()]


def test_every_snapshot_holds_the_figures_the_tables_give(
    session: Session, data: Dataset, clock: FakeClock
) -> None:
    refreshed = refresh_snapshots(session, tz=TZ, now=clock.now())
    assert refreshed == list(dict.fromkeys(m.label() for m in _months(clock)))
    for month in _months(clock):
        direct = computed_own_figures(session, month, tz=TZ, now=clock.now())
        assert own_figures(session, month, tz=TZ, now=clock.now()) == direct


def test_the_dashboard_tells_the_same_figures_with_and_without_snapshots(
    session: Session, data: Dataset, clock: FakeClock
) -> None:
    month = Period.month(2026, 11)
    without = dashboard_report(session, month, tz=TZ, now=clock.now())
    refresh_snapshots(session, tz=TZ, now=clock.now())
    assert dashboard_report(session, month, tz=TZ, now=clock.now()) == without


def test_the_trend_read_from_snapshots_is_the_trend_of_the_tables(
    session: Session, data: Dataset, clock: FakeClock
) -> None:
    months = months_ending(Period.month(2026, 11), 13)
    from_tables = trend(session, months, tz=TZ)
    branch = trend(session, months, tz=TZ, unit_id=data.east.id)
    refresh_snapshots(session, tz=TZ, now=clock.now())
    assert trend(session, months, tz=TZ, now=clock.now()) == from_tables
    assert trend(session, months, tz=TZ, unit_id=data.east.id, now=clock.now()) == branch


def test_a_snapshot_older_than_its_age_is_not_read(
    session: Session, data: Dataset, clock: FakeClock
) -> None:
    month = Period.month(2026, 11)
    refresh_snapshots(session, tz=TZ, now=clock.now())
    make_incident(session, unit=data.s1, handled_at=clock.now() - timedelta(hours=1))
    kept = own_figures(session, month, tz=TZ, now=clock.now())
    clock.advance(SNAPSHOT_MAX_AGE + timedelta(seconds=1))
    fresh = own_figures(session, month, tz=TZ, now=clock.now())
    assert fresh[data.s1.id].incidents == kept[data.s1.id].incidents + 1


def test_a_refresh_skips_the_months_whose_snapshot_is_still_young(
    session: Session, data: Dataset, clock: FakeClock
) -> None:
    refresh_snapshots(session, tz=TZ, now=clock.now())
    clock.advance(timedelta(minutes=1))
    assert refresh_snapshots(session, tz=TZ, now=clock.now()) == []
    clock.advance(SNAPSHOT_MAX_AGE)
    assert refresh_snapshots(session, tz=TZ, now=clock.now()) == ["2026-10", "2026-11"]
