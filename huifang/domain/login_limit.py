"""Failed logins per client address: a sliding window, in memory, no I/O.

The per-account limit (`huifang.domain.users`) stops guessing one account's password; this
one stops a single address from trying many accounts. It is checked before the password is
verified, so a refused try costs no hash.

Rules kept here:
- only failures count; a refused try (over the limit) is not a failure and does not extend it;
- an address is refused while `max_failures` of its failures lie inside the window; it may try
  again as soon as the oldest of them leaves the window;
- memory is bounded: an address keeps at most `max_failures` times, addresses whose window is
  empty are dropped, and past `max_addresses` the address idle longest is dropped;
- the state is per process: with several workers each counts on its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

MAX_TRACKED_ADDRESSES = 100_000


class AddressLoginLimit:
    def __init__(
        self,
        max_failures: int,
        window: timedelta,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        if max_failures < 1 or window <= timedelta(0) or max_addresses < 1:
            raise ValueError("max_failures, window and max_addresses must be positive")
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        #: address → its failure times, oldest first; addresses ordered by their last failure
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str, now: datetime) -> timedelta | None:
        """None when `address` may try to log in now; otherwise how long until it may."""
        with self._lock:
            times = self._current(address, now)
            if times is None or len(times) < self.max_failures:
                return None
            return max(times[0] + self.window - now, timedelta(seconds=1))

    def record_failure(self, address: str, now: datetime) -> None:
        with self._lock:
            times = self._current(address, now)
            if times is None:
                times = self._failures[address] = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def tracked_addresses(self) -> int:
        return len(self._failures)

    def _current(self, address: str, now: datetime) -> deque[datetime] | None:
        """`address`'s failures inside the window (None if none), after dropping expired
        addresses: they are ordered by last failure, so the sweep stops at the first one
        with a failure still inside the window."""
        horizon = now - self.window
        while self._failures:
            oldest, times = next(iter(self._failures.items()))
            if times[-1] > horizon:
                break
            del self._failures[oldest]
        current = self._failures.get(address)
        while current and current[0] <= horizon:
            current.popleft()
        return current
