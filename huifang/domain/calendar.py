"""Working days in mainland China: weekends, public holidays and the adjusted working days
(调休) that move them, for the dialer's calling rules and follow-up deadlines alike, plus a
campaign's own extra holidays.

Rules kept here:
- an adjusted working Saturday is a working day: a campaign that skips weekends calls then;
- a statutory holiday that falls on a weekday is not a working day;
- years `chinese_calendar` has no data for fall back to the plain weekday rule rather than
  failing: a dialer must not stop on New Year's Day of an unpublished year.
Pure: no clock, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import chinese_calendar


@dataclass(frozen=True, slots=True)
class DayKind:
    working: bool
    #: a statutory public holiday (国庆节, 春节 …), weekend or not
    public_holiday: bool


@functools.lru_cache(maxsize=4096)
def day_kind(day: date) -> DayKind:
    """What `day` is on the mainland calendar (weekday rule outside the published years)."""
    try:
        off, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return DayKind(working=day.weekday() < 5, public_holiday=False)
    return DayKind(working=not off, public_holiday=off and name is not None)


@dataclass(frozen=True, slots=True)
class CallingCalendar:
    call_on_weekends: bool = True
    call_on_holidays: bool = False
    #: days the campaign's owner closed on top of the national calendar
    extra_holidays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        *,
        call_on_weekends: bool = True,
        call_on_holidays: bool = False,
        extra_holidays: Iterable[date] = (),
    ) -> CallingCalendar:
        return cls(call_on_weekends, call_on_holidays, frozenset(extra_holidays))

    def allows(self, day: date) -> bool:
        if day in self.extra_holidays:
            return False
        kind = day_kind(day)
        if kind.public_holiday:
            return self.call_on_holidays
        return kind.working or self.call_on_weekends
