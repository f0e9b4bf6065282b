"""Ticket deadlines: calendar and working days, weekends, 调休, configured holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.followup.deadlines import DeadlinePolicy, deadline_for
from huifang.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def end_of(year: int, month: int, day: int) -> datetime:
    """Local midnight after that day, in UTC."""
    return datetime(year, month, day, tzinfo=SHANGHAI).astimezone(UTC) + timedelta(days=1)


def test_calendar_days_end_at_local_midnight_of_the_third_day() -> None:
    # Friday 2026-11-27 → Monday 30th, weekends counted
    assert deadline_for(local(2026, 11, 27), DeadlinePolicy(days=3)) == end_of(2026, 11, 30)


def test_working_days_skip_the_weekend() -> None:
    policy = DeadlinePolicy(days=3, working_days=True)
    # Friday → Mon, Tue, Wed
    assert deadline_for(local(2026, 11, 27), policy) == end_of(2026, 12, 2)


def test_working_days_skip_the_national_day_holiday() -> None:
    policy = DeadlinePolicy(days=3, working_days=True)
    # Wednesday 30 Sept: 1–7 Oct are off; 8, 9 and the adjusted Saturday 10 Oct are worked
    assert deadline_for(local(2026, 9, 30), policy) == end_of(2026, 10, 10)


def test_configured_holiday_is_skipped() -> None:
    policy = DeadlinePolicy(
        days=1, working_days=True, extra_holidays=frozenset({date(2026, 11, 25)})
    )
    assert deadline_for(local(2026, 11, 24), policy) == end_of(2026, 11, 26)


def test_configured_workday_counts() -> None:
    policy = DeadlinePolicy(
        days=1, working_days=True, extra_workdays=frozenset({date(2026, 11, 28)})
    )
    assert deadline_for(local(2026, 11, 27), policy) == end_of(2026, 11, 28)


def test_year_beyond_the_calendar_package_falls_back_to_weekdays() -> None:
    policy = DeadlinePolicy(days=2, working_days=True)
    # Thursday 2026-12-31 → Fri 1 Jan 2027 (not known to the package: a weekday) and Mon 4th
    assert deadline_for(local(2026, 12, 31), policy) == end_of(2027, 1, 4)


def test_the_hour_of_issue_does_not_change_the_deadline() -> None:
    policy = DeadlinePolicy(days=3)
    assert deadline_for(local(2026, 11, 24, 0), policy) == deadline_for(
        local(2026, 11, 24, 23), policy
    )


def test_day_of_issue_is_local_not_utc() -> None:
    # 01:00 local on the 24th is still the 23rd in UTC
    assert deadline_for(local(2026, 11, 24, 1), DeadlinePolicy(days=1)) == end_of(2026, 11, 25)


def test_policy_follows_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, ticket_deadline_days=5, ticket_deadline_working_days=True,
                        ticket_extra_holidays=[date(2026, 12, 1)])  # fmt: skip
    policy = DeadlinePolicy.from_settings(settings)
    assert (policy.days, policy.working_days, policy.extra_holidays) == (
        5,
        True,
        frozenset({date(2026, 12, 1)}),
    )


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="days"):
        deadline_for(local(2026, 11, 24), DeadlinePolicy(days=-1))


@given(
    issued=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    days=st.integers(min_value=0, max_value=15),
    working=st.booleans(),
)
def test_deadline_is_a_local_midnight_at_least_days_later(
    issued: datetime, days: int, working: bool
) -> None:
    deadline = deadline_for(issued, DeadlinePolicy(days=days, working_days=working))
    in_shanghai = deadline.astimezone(SHANGHAI)
    assert (in_shanghai.hour, in_shanghai.minute) == (0, 0)
    assert deadline > issued + timedelta(days=days)
    if not working:
        assert deadline <= issued + timedelta(days=days + 1)
