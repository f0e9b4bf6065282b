"""Login, session cookie, CSRF, API tokens, role checks and the login rate limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent
from huifang.settings import Settings

PASSWORD = "correct horse battery"  # the `world` fixture's users all have it


def _login(client: TestClient, username: str, password: str) -> int:
    return client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    ).status_code


def test_anonymous_request_is_401(app_client: TestClient, world: object) -> None:
    assert app_client.get("/api/v1/auth/me").status_code == 401


def test_login_sets_a_session_that_identifies_the_user(
    app_client: TestClient, world: object
) -> None:
    reply = app_client.post("/api/v1/auth/login", json={"username": "agent", "password": PASSWORD})
    assert reply.status_code == 200
    assert reply.json()["user"]["role"] == "agent"
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert app_client.get("/api/v1/auth/me").json()["username"] == "agent"


def test_wrong_password_is_401(app_client: TestClient, world: object) -> None:
    assert _login(app_client, "agent", "wrong password") == 401


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(
    app_client: TestClient, world: object
) -> None:
    wrong_user = app_client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    wrong_password = app_client.post(
        "/api/v1/auth/login", json={"username": "agent", "password": "x"}
    )
    assert wrong_user.status_code == wrong_password.status_code == 401
    assert wrong_user.json() == wrong_password.json()


LOGIN_MAX_FAILURES = Settings().login_max_failures
LOGIN_FAILURE_WINDOW = timedelta(seconds=Settings().login_failure_window_seconds)


def test_login_is_rate_limited_after_repeated_failures(
    app_client: TestClient, world: object
) -> None:
    for _ in range(LOGIN_MAX_FAILURES):
        assert _login(app_client, "agent", "wrong password") == 401
    reply = app_client.post("/api/v1/auth/login", json={"username": "agent", "password": PASSWORD})
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) > 0


def test_rate_limit_lifts_after_the_window(
    app_client: TestClient, world: object, clock: FakeClock
) -> None:
    for _ in range(LOGIN_MAX_FAILURES):
        _login(app_client, "agent", "wrong password")
    clock.advance(LOGIN_FAILURE_WINDOW + timedelta(seconds=1))
    assert _login(app_client, "agent", PASSWORD) == 200


def test_failed_logins_are_audited(app_client: TestClient, world: object, engine: Engine) -> None:
    _login(app_client, "agent", "wrong password")
    with Session(engine) as session:
        actions = session.exec(select(AuditEvent.action)).all()  # type: ignore[call-overload]
    assert ("login.failed",) in [tuple(a) for a in actions]


def test_unsafe_request_without_csrf_token_is_refused(
    login_as: Callable[[str], TestClient], world: object
) -> None:
    client = login_as("agent")
    del client.headers["X-CSRF-Token"]
    assert client.post("/api/v1/auth/logout").status_code == 403


def test_unsafe_request_with_csrf_token_passes(
    login_as: Callable[[str], TestClient], world: object
) -> None:
    client = login_as("agent")
    assert client.post("/api/v1/auth/logout").status_code == 204


def test_csrf_token_may_come_as_a_form_field(
    login_as: Callable[[str], TestClient], world: object
) -> None:
    client = login_as("agent")
    token = client.headers.pop("X-CSRF-Token")
    assert client.post("/api/v1/auth/logout", data={"csrf_token": token}).status_code == 204


def test_forged_session_cookie_is_401(app_client: TestClient, world: object) -> None:
    app_client.cookies.set("huifang_session", "eyJ1aWQiOjF9.forged.signature")
    assert app_client.get("/api/v1/auth/me").status_code == 401


def test_bearer_token_authenticates_without_csrf(
    app_client: TestClient, bearer_for: Callable[[str], dict[str, str]], world: object
) -> None:
    headers = bearer_for("integration")
    assert app_client.get("/api/v1/auth/me", headers=headers).json()["username"] == "integration"
    assert app_client.post("/api/v1/auth/logout", headers=headers).status_code == 204


def test_unknown_bearer_token_is_401(app_client: TestClient, world: object) -> None:
    reply = app_client.get("/api/v1/auth/me", headers={"Authorization": "Bearer hf_nope"})
    assert reply.status_code == 401


def test_incident_import_is_refused_to_an_agent(
    login_as: Callable[[str], TestClient], world: object
) -> None:
    client = login_as("agent")
    files = {"file": ("x.csv", b"source\n", "text/csv")}
    assert client.post("/api/v1/incidents/import", files=files).status_code == 403


def test_incident_import_is_open_to_an_integration_token(
    app_client: TestClient, bearer_for: Callable[[str], dict[str, str]], world: object
) -> None:
    files = {"file": ("x.csv", b"source\n", "text/csv")}
    reply = app_client.post(
        "/api/v1/incidents/import", files=files, headers=bearer_for("integration")
    )
    assert reply.status_code == 422  # authorised; the file itself is refused


def test_only_an_admin_creates_users(login_as: Callable[[str], TestClient], world: object) -> None:
    body = {"username": "new", "role": "agent", "password": "long enough pw"}
    assert login_as("agent").post("/api/v1/users", json=body).status_code == 403
    assert login_as("admin").post("/api/v1/users", json=body).status_code == 201


def test_a_user_cannot_create_a_token_for_someone_else(
    login_as: Callable[[str], TestClient], world: Any
) -> None:
    client = login_as("agent")
    other = world.users["agent2"].id
    assert client.post(f"/api/v1/users/{other}/tokens", json={"name": "x"}).status_code == 403
