"""The dialer's pure policy: calling windows, calendars, caps, retries, pacing, channels."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.dialer.policy import (
    CallingWindow,
    ChannelLimits,
    DialRules,
    TokenBucket,
    Verdict,
    after_call,
    cap_free_at,
    decide_dial,
)
from huifang.domain.calendar import CallingCalendar, day_kind
from huifang.domain.states import AttemptState, ContactEvent
from huifang.settings import Settings

SH = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SH)


def day_window(**calendar: bool) -> CallingWindow:
    return CallingWindow(time(8, 30), time(20, 30), SH, CallingCalendar.of(**calendar))


@pytest.fixture
def rules() -> DialRules:
    return DialRules.from_campaign({}, Settings())


# --- calendar


def test_adjusted_working_saturday_is_a_working_day() -> None:
    assert day_kind(date(2026, 10, 10)).working  # 国庆 调休


def test_national_day_on_a_weekday_is_a_public_holiday() -> None:
    kind = day_kind(date(2026, 10, 5))
    assert kind.public_holiday and not kind.working


def test_unpublished_year_falls_back_to_weekdays() -> None:
    assert day_kind(date(2031, 1, 6)).working  # a Monday
    assert not day_kind(date(2031, 1, 4)).working  # a Saturday


def test_weekday_only_campaign_calls_on_adjusted_saturday() -> None:
    calendar = CallingCalendar.of(call_on_weekends=False, call_on_holidays=False)
    assert calendar.allows(date(2026, 10, 10))
    assert not calendar.allows(date(2026, 11, 28))  # an ordinary Saturday


def test_holidays_closed_even_when_weekends_open() -> None:
    calendar = CallingCalendar.of(call_on_weekends=True, call_on_holidays=False)
    assert not calendar.allows(date(2026, 10, 3))
    assert calendar.allows(date(2026, 11, 28))


def test_extra_holiday_closes_the_day() -> None:
    calendar = CallingCalendar.of(
        call_on_weekends=True, call_on_holidays=True, extra_holidays=[date(2026, 11, 25)]
    )
    assert not calendar.allows(date(2026, 11, 25))


# --- window edges


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (local(2026, 11, 24, 8, 29, 59), False),
        (local(2026, 11, 24, 8, 30), True),
        (local(2026, 11, 24, 20, 29, 59), True),
        (local(2026, 11, 24, 20, 30), False),
        (local(2026, 11, 24, 0, 0), False),
    ],
)
def test_window_edges_in_shanghai(moment: datetime, open_: bool) -> None:
    assert day_window().is_open(moment) is open_


def test_window_is_judged_in_local_time_not_utc() -> None:
    # 01:00 UTC is 09:00 in Shanghai
    assert day_window().is_open(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
    assert not day_window().is_open(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # 21:00


def test_closed_window_replans_to_next_morning() -> None:
    assert day_window().next_open(local(2026, 11, 24, 20, 30)) == local(2026, 11, 25, 8, 30)


def test_before_opening_replans_to_same_morning() -> None:
    assert day_window().next_open(local(2026, 11, 24, 3, 0)) == local(2026, 11, 24, 8, 30)


def test_next_open_skips_the_national_day_week() -> None:
    window = day_window(call_on_weekends=True, call_on_holidays=False)
    assert window.next_open(local(2026, 9, 30, 21, 0)) == local(2026, 10, 8, 8, 30)


def test_window_across_midnight_belongs_to_the_day_it_opened() -> None:
    calendar = CallingCalendar.of(call_on_weekends=False, call_on_holidays=False)
    window = CallingWindow(time(22, 0), time(2, 0), SH, calendar)
    assert window.is_open(local(2026, 11, 27, 23, 0))  # Friday evening
    assert window.is_open(local(2026, 11, 28, 1, 59))  # Friday's window, on Saturday
    assert not window.is_open(local(2026, 11, 28, 2, 0))
    assert not window.is_open(local(2026, 11, 28, 23, 0))  # Saturday's own window
    assert window.next_open(local(2026, 11, 28, 2, 0)) == local(2026, 11, 30, 22, 0)


def test_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="empty window"):
        CallingWindow(time(9), time(9), SH)


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)))
def test_next_open_is_always_inside_the_window_and_not_earlier(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC)
    window = day_window(call_on_weekends=False, call_on_holidays=False)
    opening = window.next_open(moment)
    assert opening >= moment
    assert window.is_open(opening)


# --- due now?


def test_due_inside_window_dials(rules: DialRules) -> None:
    decision = decide_dial(
        rules, now=local(2026, 11, 24, 10), contact_state="pending", opted_out=False
    )
    assert decision.verdict == Verdict.dial


def test_due_that_missed_its_window_is_replanned_not_fired_late(rules: DialRules) -> None:
    decision = decide_dial(
        rules, now=local(2026, 11, 24, 21), contact_state="pending", opted_out=False
    )
    assert decision.verdict == Verdict.replan
    assert decision.at == local(2026, 11, 25, 8, 30)


def test_opted_out_contact_is_cancelled(rules: DialRules) -> None:
    decision = decide_dial(
        rules, now=local(2026, 11, 24, 10), contact_state="pending", opted_out=True
    )
    assert decision.verdict == Verdict.cancel


def test_contact_answered_by_sms_cancels_the_voice_fallback(rules: DialRules) -> None:
    decision = decide_dial(
        rules, now=local(2026, 11, 24, 10), contact_state="answered", opted_out=False
    )
    assert (decision.verdict, decision.reason) == (Verdict.cancel, "contact_answered")


def test_daily_cap_replans_until_oldest_contact_leaves_the_day(rules: DialRules) -> None:
    now = local(2026, 11, 24, 15)
    history = [local(2026, 11, 24, 9), local(2026, 11, 24, 13)]
    decision = decide_dial(
        rules, now=now, contact_state="in_progress", opted_out=False, history=history
    )
    assert decision.verdict == Verdict.replan
    assert decision.at == local(2026, 11, 25, 9)


def test_weekly_cap_counts_seven_days() -> None:
    now = local(2026, 11, 24, 10)
    history = [now - timedelta(days=d) for d in (6, 5, 4, 3)]
    assert cap_free_at(history, now, per_24h=2, per_7d=4) == history[0] + timedelta(days=7)


@given(
    st.lists(st.integers(min_value=0, max_value=10 * 24 * 60), max_size=12),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=6),
)
def test_contact_at_cap_free_time_keeps_both_caps(
    minutes: list[int], per_24h: int, per_7d: int
) -> None:
    now = local(2026, 11, 24, 10)
    history = [now - timedelta(minutes=m) for m in minutes]
    free = cap_free_at(history, now, per_24h=per_24h, per_7d=per_7d)
    in_day = [t for t in history if free - timedelta(hours=24) < t <= free]
    in_week = [t for t in history if free - timedelta(days=7) < t <= free]
    assert len(in_day) < per_24h and len(in_week) < per_7d
    assert free >= now


# --- after a call


@pytest.mark.parametrize(
    ("outcome", "delay"),
    [
        (AttemptState.busy, timedelta(minutes=15)),
        (AttemptState.no_answer, timedelta(hours=2)),
        (AttemptState.failed, timedelta(minutes=30)),
        (AttemptState.abandoned, timedelta(hours=1)),
        (AttemptState.machine, timedelta(hours=3)),
    ],
)
def test_retry_delay_per_outcome(rules: DialRules, outcome: AttemptState, delay: timedelta) -> None:
    ended = local(2026, 11, 24, 10)
    step = after_call(rules, outcome=outcome, attempts_made=1, ended_at=ended)
    assert step == after_call(rules, outcome=outcome, attempts_made=1, ended_at=ended)
    assert step.retry_at == ended + delay and step.contact_event is None


def test_retry_that_lands_after_closing_moves_to_next_opening(rules: DialRules) -> None:
    step = after_call(
        rules, outcome=AttemptState.no_answer, attempts_made=1, ended_at=local(2026, 11, 24, 19)
    )
    assert step.retry_at == local(2026, 11, 25, 8, 30)


def test_last_attempt_exhausts_the_contact(rules: DialRules) -> None:
    step = after_call(
        rules, outcome=AttemptState.busy, attempts_made=3, ended_at=local(2026, 11, 24, 10)
    )
    assert step == type(step)(ContactEvent.exhaust)


def test_completed_call_answers_the_contact(rules: DialRules) -> None:
    step = after_call(
        rules, outcome=AttemptState.completed, attempts_made=1, ended_at=local(2026, 11, 24, 10)
    )
    assert step.contact_event == ContactEvent.answer and step.retry_at is None


def test_campaign_rules_override_defaults() -> None:
    rules = DialRules.from_campaign(
        {
            "window": {"start": "09:00", "end": "18:00"},
            "max_attempts": 5,
            "retry_minutes": {"busy": 5},
        },
        Settings(),
    )
    assert rules.window.start == time(9) and rules.max_attempts == 5
    assert rules.retry_delays["busy"] == timedelta(minutes=5)


def test_unknown_retry_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="retry_minutes"):
        DialRules.from_campaign({"retry_minutes": {"sleepy": 5}}, Settings())


# --- pacing and channels


def test_bucket_grants_burst_then_paces() -> None:
    bucket = TokenBucket(rate=5, burst=5)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(0.0) == pytest.approx(0.2)
    assert bucket.take(0.2) == 0.0


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_bucket_never_exceeds_rate_under_bursts(gaps: list[float]) -> None:
    rate, burst = 5.0, 5.0
    bucket = TokenBucket(rate=rate, burst=burst)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        granted += bucket.take(now) == 0.0
    assert granted <= burst + rate * now + 1e-9


def test_channels_respect_trunk_and_campaign_limits() -> None:
    limits = ChannelLimits(3)
    limits.limit_campaign(1, 2)
    limits.acquire(1)
    limits.acquire(1)
    assert limits.free_for(1) == 0 and limits.free_for(2) == 1
    limits.acquire(2)
    assert limits.free_for(2) == 0
    with pytest.raises(RuntimeError):
        limits.acquire(2)
    limits.release(1)
    assert limits.free_for(1) == 1


def test_bucket_refilled_by_float_steps_grants_the_whole_token() -> None:
    bucket = TokenBucket(rate=10, burst=1)
    assert bucket.take(0.6) == 0.0
    assert bucket.take(0.7) == 0.0  # 0.7 - 0.6 is a hair under 0.1: 0.999… tokens
