"""Reporting periods: whole local days in the deployment's time zone, turned into UTC bounds.

Rules kept here:
- a period is a half-open range of local dates `[first, last + 1 day)`; its bounds in UTC
  come from the time zone, so a month in Shanghai starts at 16:00 UTC the day before;
- the comparisons a report makes (month-on-month, year-on-year) are periods derived here,
  never re-computed by callers;
- pure: no clock, no I/O; "today" is handed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: the years a period asked for may name
MIN_YEAR, MAX_YEAR = 1910, 2999


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    #: the last day included
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"period: last day {self.last} is before first day {self.first}")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        first = date(year, month, 1)
        return cls(first, _month_after(first) - timedelta(days=1))

    @classmethod
    def month_of(cls, day: date) -> Period:
        return cls.month(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Period:
        """`2026-11` (a month), `2026-11-03` (a day) or `2026-11-01..2026-11-15` (a range)."""
        text = text.strip()
        try:
            if ".." in text:
                first, last = text.split("..", 1)
                period = cls(date.fromisoformat(first), date.fromisoformat(last))
            elif len(text) == 7:
                year, month = text.split("-")
                period = cls.month(int(year), int(month))
            else:
                day = date.fromisoformat(text)
                period = cls(day, day)
        except ValueError as exc:
            raise ValueError(
                f"period: {text!r} is not YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
            ) from exc
        # what it is compared with (the year before, years of trend) must exist too
        if not (MIN_YEAR <= period.first.year and period.last.year <= MAX_YEAR):
            raise ValueError(f"period: years {MIN_YEAR} to {MAX_YEAR} only")
        return period

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def is_month(self) -> bool:
        return self.first.day == 1 and self.last == Period.month_of(self.first).last

    def label(self) -> str:
        if self.is_month:
            return f"{self.first:%Y-%m}"
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """`[start, end)` in UTC: local midnight of the first day to local midnight after the last."""
        return _utc_midnight(self.first, tz), _utc_midnight(self.last + timedelta(days=1), tz)

    def previous(self) -> Period:
        """Month-on-month: the month before a month, else the same number of days before."""
        if self.is_month:
            return Period.month_of(self.first - timedelta(days=1))
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def year_ago(self) -> Period:
        """Year-on-year: the same dates one year earlier (29 February becomes the 28th)."""
        if self.is_month:
            return Period.month(self.first.year - 1, self.first.month)
        return Period(_year_before(self.first), _year_before(self.last))


def months_ending(last: Period, count: int) -> list[Period]:
    """`count` whole months, oldest first, ending with the month that holds `last.first`."""
    months = [Period.month_of(last.first)]
    while len(months) < count:
        months.insert(0, months[0].previous())
    return months


def _month_after(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _year_before(day: date) -> date:
    if day.month == 2 and day.day == 29:
        return date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)


def _utc_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
