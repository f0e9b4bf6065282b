"""Item 3: login limits reserved in the database before the password is checked.

The reservations are raced from real threads, each with its own connection, on SQLite and
PostgreSQL; the HTTP behaviour (per account at an address, account-wide, per address) goes
through the login endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import create_db_engine
from huifang.domain import login_throttle
from huifang.domain.users import LoginRateLimited
from tests.security.conftest import PASSWORD

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
LIMITS = login_throttle.LoginLimits(
    per_account_at_address=5,
    per_account=30,
    account_window=timedelta(minutes=15),
    per_address=30,
    address_window=timedelta(minutes=10),
)


@pytest.fixture
def sqlite_engine(sqlite_engine: Engine) -> Engine:
    """SQLite with the default wait for its write lock: sixty writers queue on it here."""

    def default_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    event.listen(sqlite_engine, "connect", default_wait)
    sqlite_engine.dispose()
    return sqlite_engine


@pytest.fixture
def postgres_engine(postgres_engine: Engine, postgres_url: str) -> Iterator[Engine]:
    """PostgreSQL without the security suite's short lock timeout: threads racing for one
    throttle row queue on its lock as a server's requests would, however loaded the machine."""
    engine = create_db_engine(postgres_url)
    yield engine
    engine.dispose()


def _race(engine: Engine, attempts: list[tuple[str, str]]) -> int:
    """Reserve every (username, address) at once from as many threads; how many got in."""

    def one(attempt: tuple[str, str]) -> bool:
        try:
            login_throttle.reserve(engine, LIMITS, attempt[0], attempt[1], T0)
        except LoginRateLimited:
            return False
        return True

    with ThreadPoolExecutor(len(attempts)) as pool:
        return sum(pool.map(one, attempts))


def test_simultaneous_attempts_on_one_account_reserve_at_most_its_limit(engine: Engine) -> None:
    assert _race(engine, [("agent", "203.0.113.7")] * 25) == 5


def test_simultaneous_attempts_from_one_address_reserve_at_most_its_limit(
    engine: Engine,
) -> None:
    assert _race(engine, [(f"user{n}", "203.0.113.7") for n in range(60)]) == 30


def test_a_full_limit_takes_no_place_in_the_others(engine: Engine) -> None:
    for _ in range(5):
        login_throttle.reserve(engine, LIMITS, "agent", "203.0.113.7", T0)
    with pytest.raises(LoginRateLimited):
        login_throttle.reserve(engine, LIMITS, "agent", "203.0.113.7", T0)
    # the address used 5 of its 30 places, not 6: 25 remain for other accounts
    assert _race(engine, [(f"user{n}", "203.0.113.7") for n in range(30)]) == 25


def test_the_refusal_says_when_the_window_ends(engine: Engine) -> None:
    for _ in range(5):
        login_throttle.reserve(engine, LIMITS, "agent", "203.0.113.7", T0)
    with pytest.raises(LoginRateLimited) as refused:
        login_throttle.reserve(engine, LIMITS, "agent", "203.0.113.7", T0 + timedelta(minutes=5))
    assert refused.value.retry_after == timedelta(minutes=10)


def test_a_window_that_ended_starts_over(engine: Engine) -> None:
    for _ in range(5):
        login_throttle.reserve(engine, LIMITS, "agent", "203.0.113.7", T0)
    later = T0 + timedelta(minutes=15, seconds=1)
    login_throttle.reserve(engine, LIMITS, "agent", "203.0.113.7", later)


# --- through the login endpoint -----------------------------------------------------------


@pytest.fixture
def client_from(runtime: Runtime, world: object) -> Callable[[str], TestClient]:
    def from_address(address: str) -> TestClient:
        return TestClient(create_app(runtime), client=(address, 40000))

    return from_address


def _login(client: TestClient, password: str, username: str = "agent") -> int:
    reply = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    return reply.status_code


def test_a_guesser_cannot_lock_the_owner_out_from_elsewhere(
    client_from: Callable[[str], TestClient],
) -> None:
    guesser = client_from("198.51.100.66")
    assert [_login(guesser, "wrong password") for _ in range(6)] == [401] * 5 + [429]
    assert _login(client_from("203.0.113.7"), PASSWORD) == 200


def test_the_admin_account_is_not_locked_by_five_wrong_passwords_elsewhere(
    client_from: Callable[[str], TestClient],
) -> None:
    guesser = client_from("198.51.100.66")
    for _ in range(5):
        _login(guesser, "wrong password", "admin")
    assert _login(client_from("203.0.113.7"), PASSWORD, "admin") == 200


def test_guessing_spread_over_many_addresses_meets_the_account_wide_limit(
    client_from: Callable[[str], TestClient], runtime: Runtime
) -> None:
    runtime.settings.login_account_max_failures = 8
    for n in range(8):
        assert _login(client_from(f"198.51.100.{n}"), "wrong password") == 401
    reply = client_from("203.0.113.7").post(
        "/api/v1/auth/login", json={"username": "agent", "password": PASSWORD}
    )
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) <= 15 * 60


def test_the_account_wide_limit_lifts_when_its_window_ends(
    client_from: Callable[[str], TestClient], runtime: Runtime, clock: FakeClock
) -> None:
    runtime.settings.login_account_max_failures = 8
    for n in range(8):
        _login(client_from(f"198.51.100.{n}"), "wrong password")
    clock.advance(timedelta(minutes=15, seconds=1))
    assert _login(client_from("203.0.113.7"), PASSWORD) == 200


def test_a_success_gives_the_owners_address_a_fresh_count(
    client_from: Callable[[str], TestClient],
) -> None:
    owner = client_from("203.0.113.7")
    for _ in range(4):
        _login(owner, "typo password")
    assert _login(owner, PASSWORD) == 200
    assert [_login(owner, "typo password") for _ in range(5)] == [401] * 5
