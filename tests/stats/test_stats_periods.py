"""Reporting periods: local months in UTC, comparisons, parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.stats.periods import Period, months_ending

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_shanghai_month_starts_at_16_utc_the_day_before() -> None:
    start, end = Period.month(2026, 11).bounds(SHANGHAI)
    assert start == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


def test_previous_of_a_month_is_the_whole_month_before() -> None:
    assert Period.month(2026, 3).previous() == Period(date(2026, 2, 1), date(2026, 2, 28))


def test_previous_of_january_is_december_of_last_year() -> None:
    assert Period.month(2026, 1).previous() == Period.month(2025, 12)


def test_previous_of_a_range_is_the_same_length_just_before() -> None:
    week = Period(date(2026, 11, 16), date(2026, 11, 22))
    assert week.previous() == Period(date(2026, 11, 9), date(2026, 11, 15))


def test_year_ago_of_a_leap_day_is_the_28th() -> None:
    assert Period(date(2028, 2, 29), date(2028, 2, 29)).year_ago().first == date(2027, 2, 28)


def test_months_ending_lists_oldest_first() -> None:
    labels = [p.label() for p in months_ending(Period.month(2026, 2), 3)]
    assert labels == ["2025-12", "2026-01", "2026-02"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11", Period(date(2026, 11, 1), date(2026, 11, 30))),
        ("2026-11-03", Period(date(2026, 11, 3), date(2026, 11, 3))),
        ("2026-11-01..2026-11-15", Period(date(2026, 11, 1), date(2026, 11, 15))),
    ],
)
def test_parse_accepts_month_day_and_range(text: str, expected: Period) -> None:
    assert Period.parse(text) == expected


@pytest.mark.parametrize("text", ["2026", "2026-13", "yesterday", "2026-11-15..2026-11-01"])
def test_parse_refuses_what_is_not_a_period(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        Period.parse(text)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_months_tile_time_without_gap_or_overlap(day: date) -> None:
    month = Period.month_of(day)
    assert month.first <= day <= month.last
    assert month.previous().last + timedelta(days=1) == month.first
    assert month.previous().bounds(SHANGHAI)[1] == month.bounds(SHANGHAI)[0]


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.integers(0, 60))
def test_label_parses_back_to_the_same_period(first: date, length: int) -> None:
    period = Period(first, first + timedelta(days=length))
    assert Period.parse(period.label()) == period
