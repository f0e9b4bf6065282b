"""Console sessions end early on the server: logout everywhere, an admin's revocation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from huifang.api.auth import SESSION_COOKIE
from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent, User

PASSWORD = "correct horse battery"  # the `world` fixture's users all have it
LoginAs = Callable[[str], TestClient]


def _end_sessions_at(engine: Engine, user_id: int, moment: datetime) -> None:
    with Session(engine) as session:
        user = session.get(User, user_id)
        assert user is not None
        user.sessions_valid_from = moment
        session.commit()


def _me(client: TestClient) -> int:
    return client.get("/api/v1/auth/me").status_code


def test_a_cookie_signed_before_sessions_valid_from_is_refused(
    login_as: LoginAs, world: Any, engine: Engine, clock: FakeClock
) -> None:
    client = login_as("agent")
    _end_sessions_at(engine, world.users["agent"].id, clock.now() + timedelta(seconds=5))
    assert _me(client) == 401


def test_a_cookie_signed_after_sessions_valid_from_is_accepted(
    login_as: LoginAs, world: Any, engine: Engine, clock: FakeClock
) -> None:
    _end_sessions_at(engine, world.users["agent"].id, clock.now())
    clock.advance(timedelta(seconds=1))
    assert _me(login_as("agent")) == 200


def test_logout_everywhere_ends_the_current_session(login_as: LoginAs, world: object) -> None:
    client = login_as("agent")
    cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/api/v1/auth/logout-everywhere").status_code == 204
    client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept by whoever stole it
    assert _me(client) == 401


def test_logout_everywhere_ends_the_users_other_sessions(login_as: LoginAs, world: object) -> None:
    other_browser = login_as("agent")
    login_as("agent").post("/api/v1/auth/logout-everywhere")
    assert _me(other_browser) == 401


def test_logout_everywhere_leaves_other_users_logged_in(login_as: LoginAs, world: object) -> None:
    colleague = login_as("agent2")
    login_as("agent").post("/api/v1/auth/logout-everywhere")
    assert _me(colleague) == 200


def test_logout_everywhere_needs_the_csrf_token(login_as: LoginAs, world: object) -> None:
    client = login_as("agent")
    del client.headers["X-CSRF-Token"]
    assert client.post("/api/v1/auth/logout-everywhere").status_code == 403
    assert _me(client) == 200


def test_a_password_login_after_logout_everywhere_starts_a_working_session(
    login_as: LoginAs, app_client: TestClient, world: object, clock: FakeClock
) -> None:
    login_as("agent").post("/api/v1/auth/logout-everywhere")
    clock.advance(timedelta(seconds=1))  # a cookie knows its signing time to the second
    reply = app_client.post("/api/v1/auth/login", json={"username": "agent", "password": PASSWORD})
    assert reply.status_code == 200
    assert _me(app_client) == 200


def test_an_admin_revocation_ends_the_users_sessions(login_as: LoginAs, world: Any) -> None:
    agent = login_as("agent")
    reply = login_as("admin").post(f"/api/v1/users/{world.users['agent'].id}/sessions/revoke")
    assert reply.status_code == 204
    assert _me(agent) == 401


def test_only_an_admin_revokes_another_users_sessions(login_as: LoginAs, world: Any) -> None:
    colleague = login_as("agent2")
    reply = login_as("agent").post(f"/api/v1/users/{world.users['agent2'].id}/sessions/revoke")
    assert reply.status_code == 403
    assert _me(colleague) == 200


def test_an_admin_revocation_is_audited(login_as: LoginAs, world: Any, engine: Engine) -> None:
    agent_id = world.users["agent"].id
    login_as("admin").post(f"/api/v1/users/{agent_id}/sessions/revoke")
    with Session(engine) as session:
        events = session.execute(
            select(AuditEvent).where(col(AuditEvent.action) == "user.sessions_end")
        ).scalars()
        assert [(e.actor, e.target_type, e.target_id) for e in events] == [
            ("admin", "user", str(agent_id))
        ]


def test_revoking_an_unknown_users_sessions_is_404(login_as: LoginAs, world: object) -> None:
    assert login_as("admin").post("/api/v1/users/999999/sessions/revoke").status_code == 404


def test_bearer_tokens_end_with_the_sessions(
    login_as: LoginAs,
    app_client: TestClient,
    bearer_for: Callable[[str], dict[str, str]],
    world: Any,
) -> None:
    headers = bearer_for("integration")
    login_as("admin").post(f"/api/v1/users/{world.users['integration'].id}/sessions/revoke")
    assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401
