"""The dialer's decisions, as pure functions of the clock, the campaign's rules and the
contact's history: is this attempt due now, when is the retry after an outcome, may one
more call start (trunk channels, calls per second).

Rules kept here:
- the calling window is judged at the moment of dialing, in the deployment's time zone,
  with wall-clock times converted through `zoneinfo` (so a zone with DST would be right too);
  work that missed its window is re-planned to the next opening, never fired late;
- a window whose start is after its end runs across midnight and belongs to the day it
  opened (22:00–02:00 on Friday ends Saturday 02:00);
- caps count every SMS sent and every call dialed to the phone, across channels and
  campaigns; a capped contact is re-planned to the moment the cap frees, inside a window;
- no I/O, no clock of its own: every function takes `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from huifang.domain.calendar import CallingCalendar
from huifang.domain.states import AttemptState, ContactEvent, ContactState
from huifang.settings import Settings

#: how far ahead `next_open` looks: a calendar closed for longer than this is a mistake
_SEARCH_DAYS = 400

#: default minutes to wait before calling again, per outcome of the last call
DEFAULT_RETRY_MINUTES: Mapping[str, float] = {
    AttemptState.busy: 15,
    AttemptState.no_answer: 120,
    AttemptState.failed: 30,
    AttemptState.abandoned: 60,  # hung up early
    AttemptState.machine: 180,
}
RETRYABLE = frozenset(DEFAULT_RETRY_MINUTES)


@dataclass(frozen=True, slots=True)
class CallingWindow:
    start: time
    end: time
    tz: ZoneInfo
    calendar: CallingCalendar = field(default_factory=CallingCalendar)

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("calling window: start and end are equal (an empty window)")

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def _opening(self, day: date) -> datetime:
        return datetime.combine(day, self.start, self.tz)

    def _closing(self, day: date) -> datetime:
        closing_day = day + timedelta(days=1) if self.crosses_midnight else day
        return datetime.combine(closing_day, self.end, self.tz)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        for day in (local.date() - timedelta(days=1), local.date()):
            if self._opening(day) <= at < self._closing(day) and self.calendar.allows(day):
                return True
        return False

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when the window is open then, else the next opening after it."""
        if self.is_open(at):
            return at
        first = at.astimezone(self.tz).date()
        for offset in range(_SEARCH_DAYS):
            day = first + timedelta(days=offset)
            opening = self._opening(day)
            if opening > at and self.calendar.allows(day):
                return opening
        raise ValueError(f"calling window never opens in the {_SEARCH_DAYS} days after {at}")


@dataclass(frozen=True, slots=True)
class DialRules:
    window: CallingWindow
    max_attempts: int = 3
    retry_delays: Mapping[str, timedelta] = field(
        default_factory=lambda: {k: timedelta(minutes=v) for k, v in DEFAULT_RETRY_MINUTES.items()}
    )
    contacts_per_24h: int = 2
    contacts_per_7d: int = 4

    @classmethod
    def from_campaign(cls, rules: Mapping[str, Any], settings: Settings) -> DialRules:
        """A campaign's `rules` JSON over the deployment's defaults. Keys: window
        {start, end} ("HH:MM"), call_on_weekends, call_on_holidays, holidays ["YYYY-MM-DD"],
        max_attempts, retry_minutes {busy, no_answer, failed, abandoned, machine},
        contacts_per_24h, contacts_per_7d."""
        window = rules.get("window") or {}
        calendar = CallingCalendar.of(
            call_on_weekends=bool(rules.get("call_on_weekends", settings.call_on_weekends)),
            call_on_holidays=bool(rules.get("call_on_holidays", settings.call_on_holidays)),
            extra_holidays=(date.fromisoformat(d) for d in rules.get("holidays", ())),
        )
        minutes = {**DEFAULT_RETRY_MINUTES, **rules.get("retry_minutes", {})}
        unknown = set(minutes) - RETRYABLE
        if unknown:
            raise ValueError(f"rules.retry_minutes: unknown outcomes {sorted(unknown)}")
        return cls(
            window=CallingWindow(
                start=_time(window.get("start"), settings.call_window_start, "start"),
                end=_time(window.get("end"), settings.call_window_end, "end"),
                tz=settings.tz,
                calendar=calendar,
            ),
            max_attempts=int(rules.get("max_attempts", settings.max_attempts)),
            retry_delays={k: timedelta(minutes=float(v)) for k, v in minutes.items()},
            contacts_per_24h=int(rules.get("contacts_per_24h", settings.contacts_per_24h)),
            contacts_per_7d=int(rules.get("contacts_per_7d", settings.contacts_per_7d)),
        )


def _time(value: str | None, default: time, name: str) -> time:
    try:
        return time.fromisoformat(value) if value else default
    except ValueError:
        raise ValueError(f"rules.window.{name}: {value!r} is not a time of day (HH:MM)") from None


# --- is it due now? ----------------------------------------------------------------------


class Verdict(StrEnum):
    dial = "dial"
    replan = "replan"  # not now: try again at `at`
    cancel = "cancel"  # never: the contact is done or must not be called


@dataclass(frozen=True, slots=True)
class DialDecision:
    verdict: Verdict
    at: datetime | None = None
    reason: str = ""


#: contact states in which nobody is called any more
_DONE_CONTACTS = frozenset({ContactState.answered, ContactState.excluded, ContactState.unreachable})


def decide_dial(
    rules: DialRules,
    *,
    now: datetime,
    contact_state: str,
    opted_out: bool,
    history: Sequence[datetime] = (),
) -> DialDecision:
    """What to do with an attempt that came due: dial it now, re-plan it, or cancel it.
    `history` is when the phone was last contacted (SMS sent, calls dialed), any campaign."""
    if opted_out:
        return DialDecision(Verdict.cancel, reason="opted_out")
    if contact_state in _DONE_CONTACTS:
        return DialDecision(Verdict.cancel, reason=f"contact_{contact_state}")
    if not rules.window.is_open(now):
        return DialDecision(Verdict.replan, rules.window.next_open(now), "outside_window")
    free_at = cap_free_at(
        history, now, per_24h=rules.contacts_per_24h, per_7d=rules.contacts_per_7d
    )
    if free_at > now:
        return DialDecision(Verdict.replan, rules.window.next_open(free_at), "contact_cap")
    return DialDecision(Verdict.dial)


def cap_free_at(
    history: Sequence[datetime], now: datetime, *, per_24h: int, per_7d: int
) -> datetime:
    """The first moment one more contact keeps the phone within both caps (`now` if already)."""
    free = now
    for span, cap in ((timedelta(hours=24), per_24h), (timedelta(days=7), per_7d)):
        recent = sorted(t for t in history if now - span < t <= now)
        if len(recent) >= cap:
            # the oldest contacts must leave the span until one fewer than the cap remain
            free = max(free, recent[len(recent) - cap] + span)
    return free


# --- after a call ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextStep:
    #: what happens to the contact (None: it stays in progress)
    contact_event: ContactEvent | None
    #: when to call again (None: no more calls)
    retry_at: datetime | None = None


def after_call(
    rules: DialRules, *, outcome: AttemptState, attempts_made: int, ended_at: datetime
) -> NextStep:
    """The contact's fate after a call ended with `outcome`, its `attempts_made`-th call."""
    if outcome == AttemptState.completed:
        return NextStep(ContactEvent.answer)
    if outcome not in RETRYABLE:
        return NextStep(None)
    if attempts_made >= rules.max_attempts:
        return NextStep(ContactEvent.exhaust)
    retry_at = rules.window.next_open(ended_at + rules.retry_delays[outcome])
    return NextStep(None, retry_at)


# --- may one more call start? ------------------------------------------------------------


class TokenBucket:
    """Calls per second: `rate` tokens a second, at most `burst` saved up. Time is given."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._updated: float | None = None

    def take(self, now: float) -> float:
        """Take a token at monotonic time `now`: 0.0 when granted, else seconds to wait."""
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        # float refills land a hair under a whole token: that is a whole token
        if self._tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate


class ChannelLimits:
    """Concurrent calls: at most `channels` on the trunk, and a campaign's own limit."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._campaign_limits: dict[int, int | None] = {}
        self._live: dict[int, int] = {}

    @property
    def in_use(self) -> int:
        return sum(self._live.values())

    def limit_campaign(self, campaign_id: int, limit: int | None) -> None:
        self._campaign_limits[campaign_id] = limit

    def free_for(self, campaign_id: int) -> int:
        free = self.channels - self.in_use
        limit = self._campaign_limits.get(campaign_id)
        if limit is not None:
            free = min(free, limit - self._live.get(campaign_id, 0))
        return max(0, free)

    def acquire(self, campaign_id: int) -> None:
        if self.free_for(campaign_id) < 1:
            raise RuntimeError(f"no free channel for campaign {campaign_id}")
        self._live[campaign_id] = self._live.get(campaign_id, 0) + 1

    def release(self, campaign_id: int) -> None:
        left = self._live.get(campaign_id, 0) - 1
        if left < 0:
            raise RuntimeError(f"campaign {campaign_id} released a channel it did not hold")
        self._live[campaign_id] = left
