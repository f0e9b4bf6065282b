"""Ticket deadlines: N calendar or working days after the day of issue, in local time. Pure.

Rules kept here:
- the day of issue does not count; the deadline is the end (local midnight) of the Nth
  counted day, so a ticket issued at 09:00 or at 17:00 gets the same deadline;
- working days follow the mainland calendar with its adjusted days (调休), as the dialer
  reads it (`domain.calendar.day_kind`: Monday to Friday in a year `chinese-calendar` does
  not know yet), overridden by the deployment's own extra holidays and workdays;
- times go in and come out as aware UTC; only the day arithmetic is local.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from huifang.domain.calendar import day_kind
from huifang.settings import Settings


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    days: int = 3
    working_days: bool = False
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadlinePolicy:
        return cls(
            days=settings.ticket_deadline_days,
            working_days=settings.ticket_deadline_working_days,
            tz=settings.tz,
            extra_holidays=frozenset(settings.ticket_extra_holidays),
            extra_workdays=frozenset(settings.ticket_extra_workdays),
        )

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        return day_kind(day).working


def deadline_for(issued_at: datetime, policy: DeadlinePolicy) -> datetime:
    """The end of the `policy.days`-th (working) day after the local day of `issued_at`."""
    if policy.days < 0:
        raise ValueError("days: a deadline cannot lie before the day of issue")
    day = issued_at.astimezone(policy.tz).date()
    counted = 0
    while counted < policy.days:
        day += timedelta(days=1)
        if not policy.working_days or policy.is_working_day(day):
            counted += 1
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=policy.tz)
    return end_of_day.astimezone(UTC)
