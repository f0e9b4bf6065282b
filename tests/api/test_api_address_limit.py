"""The per-address failed-login limit: one address may not try many accounts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.settings import Settings

PASSWORD = "correct horse battery"  # the `world` fixture's users all have it
LIMIT = 3
WINDOW = timedelta(minutes=10)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.login_address_max_failures = LIMIT
    settings.login_address_window_seconds = WINDOW.total_seconds()
    return settings


@pytest.fixture
def client_from(runtime: Runtime, world: object) -> Iterator[Callable[[str], TestClient]]:
    """A function returning a client whose requests come from that address."""
    clients: list[TestClient] = []

    def from_address(address: str) -> TestClient:
        client = TestClient(create_app(runtime), client=(address, 40000))
        clients.append(client)
        return client

    yield from_address
    for client in clients:
        client.close()


def _login(client: TestClient, username: str, password: str) -> int:
    return client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    ).status_code


def _fail_on_other_accounts(client: TestClient, times: int) -> None:
    """Failures spread over accounts, so the per-account limit never triggers."""
    for n in range(times):
        assert _login(client, f"guess{n}", "wrong password") == 401


def test_an_address_over_the_limit_is_refused_with_retry_after(
    client_from: Callable[[str], TestClient],
) -> None:
    client = client_from("203.0.113.7")
    _fail_on_other_accounts(client, LIMIT)
    reply = client.post("/api/v1/auth/login", json={"username": "agent", "password": PASSWORD})
    assert reply.status_code == 429
    assert 0 < int(reply.headers["retry-after"]) <= WINDOW.total_seconds()


def test_an_address_below_the_limit_still_logs_in(
    client_from: Callable[[str], TestClient],
) -> None:
    client = client_from("203.0.113.7")
    _fail_on_other_accounts(client, LIMIT - 1)
    assert _login(client, "agent", PASSWORD) == 200


def test_successful_logins_do_not_count(client_from: Callable[[str], TestClient]) -> None:
    client = client_from("203.0.113.7")
    for _ in range(LIMIT + 1):
        assert _login(client, "agent", PASSWORD) == 200
    _fail_on_other_accounts(client, LIMIT - 1)
    assert _login(client, "agent", PASSWORD) == 200


def test_the_limit_is_per_address(client_from: Callable[[str], TestClient]) -> None:
    _fail_on_other_accounts(client_from("203.0.113.7"), LIMIT)
    assert _login(client_from("198.51.100.2"), "agent", PASSWORD) == 200


def test_an_address_may_try_again_once_the_window_has_room(
    client_from: Callable[[str], TestClient], clock: FakeClock
) -> None:
    client = client_from("203.0.113.7")
    _fail_on_other_accounts(client, LIMIT)
    clock.advance(WINDOW + timedelta(seconds=1))
    assert _login(client, "agent", PASSWORD) == 200


def test_a_refused_try_does_not_reach_the_password_check(
    client_from: Callable[[str], TestClient],
) -> None:
    client = client_from("203.0.113.7")
    _fail_on_other_accounts(client, LIMIT)
    reply = client.post("/api/v1/auth/login", json={"username": "agent", "password": "wrong"})
    assert reply.status_code == 429  # not 401: the password was never looked at
