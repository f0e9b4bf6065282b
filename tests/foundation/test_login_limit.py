"""AddressLoginLimit on its own: the sliding window and its bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from huifang.domain.login_limit import AddressLoginLimit

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def test_retry_after_counts_from_the_oldest_failure_still_in_the_window() -> None:
    limit = AddressLoginLimit(2, WINDOW)
    limit.record_failure("a", T0)
    limit.record_failure("a", T0 + timedelta(minutes=4))
    assert limit.retry_after("a", T0 + timedelta(minutes=5)) == timedelta(minutes=5)


def test_the_window_slides_failure_by_failure() -> None:
    limit = AddressLoginLimit(2, WINDOW)
    limit.record_failure("a", T0)
    limit.record_failure("a", T0 + timedelta(minutes=4))
    assert limit.retry_after("a", T0 + WINDOW) is None
    limit.record_failure("a", T0 + WINDOW)
    assert limit.retry_after("a", T0 + WINDOW) == timedelta(minutes=4)


def test_addresses_whose_window_is_empty_are_forgotten() -> None:
    limit = AddressLoginLimit(2, WINDOW)
    limit.record_failure("a", T0)
    limit.record_failure("b", T0 + timedelta(minutes=1))
    limit.record_failure("c", T0 + WINDOW + timedelta(seconds=30))
    assert limit.tracked_addresses() == 2  # "a" left the window, "b" not yet


def test_past_the_cap_the_address_idle_longest_is_dropped() -> None:
    limit = AddressLoginLimit(1, WINDOW, max_addresses=2)
    limit.record_failure("a", T0)
    limit.record_failure("b", T0 + timedelta(seconds=1))
    limit.record_failure("c", T0 + timedelta(seconds=2))
    assert limit.tracked_addresses() == 2
    assert limit.retry_after("a", T0 + timedelta(seconds=3)) is None
    assert limit.retry_after("c", T0 + timedelta(seconds=3)) is not None
