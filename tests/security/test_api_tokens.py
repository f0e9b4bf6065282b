"""Item 4: API tokens expire, are listed and revoked, end with their user's sessions, and
are created only by whom they may be; the audit names the real actor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from huifang.cli import app
from huifang.clock import FakeClock
from tests.security.conftest import Login

Bearer = Callable[[str], dict[str, str]]


def _create(client: TestClient, owner_id: int, **body: Any) -> Any:
    return client.post(f"/api/v1/users/{owner_id}/tokens", json={"name": "cad-import", **body})


def _works(app_client: TestClient, token: str) -> bool:
    reply = app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    return reply.status_code == 200


def test_a_user_creates_a_token_for_themselves_with_a_90_day_expiry(
    login_as: Login, app_client: TestClient, world: Any, clock: FakeClock
) -> None:
    reply = _create(login_as("agent"), world.users["agent"].id)
    assert reply.status_code == 201
    created = reply.json()
    assert created["token"].startswith("hf_") and created["state"] == "live"
    assert created["expires_at"].startswith((clock.now() + timedelta(days=90)).date().isoformat())
    assert _works(app_client, created["token"])


def test_a_token_stops_working_when_it_expires(
    login_as: Login, app_client: TestClient, world: Any, clock: FakeClock
) -> None:
    token = _create(login_as("agent"), world.users["agent"].id, expires_in_days=1).json()["token"]
    clock.advance(timedelta(days=1, seconds=1))
    assert not _works(app_client, token)


@pytest.mark.parametrize("days", [0, 366])
def test_a_lifetime_beyond_a_year_or_under_a_day_is_refused(
    login_as: Login, world: Any, days: int
) -> None:
    assert (
        _create(login_as("agent"), world.users["agent"].id, expires_in_days=days).status_code == 422
    )


def test_a_token_cannot_create_a_token(
    bearer_for: Bearer, app_client: TestClient, world: Any
) -> None:
    reply = app_client.post(
        f"/api/v1/users/{world.users['admin'].id}/tokens",
        json={"name": "more"},
        headers=bearer_for("admin"),
    )
    assert reply.status_code == 403


def test_a_user_cannot_create_a_token_for_someone_else(login_as: Login, world: Any) -> None:
    assert _create(login_as("agent"), world.users["agent2"].id).status_code == 403


def test_an_admin_creates_the_integrations_token_and_is_named_in_the_audit(
    login_as: Login, world: Any, engine: Engine
) -> None:
    assert _create(login_as("admin"), world.users["integration"].id).status_code == 201
    with engine.connect() as conn:
        actor, detail = conn.execute(
            text("SELECT actor, detail FROM audit_events WHERE action = 'token.create'")
        ).one()
    assert actor == "admin"
    assert "integration" in str(detail)


def test_a_user_holds_at_most_ten_live_tokens(login_as: Login, world: Any) -> None:
    agent = login_as("agent")
    for n in range(10):
        assert _create(agent, world.users["agent"].id, name=f"t{n}").status_code == 201
    assert _create(agent, world.users["agent"].id, name="eleventh").status_code == 422


def test_the_owner_lists_their_tokens_without_the_secret(login_as: Login, world: Any) -> None:
    agent = login_as("agent")
    _create(agent, world.users["agent"].id)
    [listed] = agent.get(f"/api/v1/users/{world.users['agent'].id}/tokens").json()
    assert listed["name"] == "cad-import" and "token" not in listed
    assert listed["last_used_at"] is None


def test_another_user_cannot_list_them(login_as: Login, world: Any) -> None:
    _create(login_as("agent"), world.users["agent"].id)
    reply = login_as("agent2").get(f"/api/v1/users/{world.users['agent'].id}/tokens")
    assert reply.status_code == 403


def test_a_revoked_token_stops_working_at_once(
    login_as: Login, app_client: TestClient, world: Any
) -> None:
    agent = login_as("agent")
    created = _create(agent, world.users["agent"].id).json()
    revoked = agent.delete(f"/api/v1/users/{world.users['agent'].id}/tokens/{created['id']}")
    assert revoked.status_code == 204
    assert not _works(app_client, created["token"])
    [listed] = agent.get(f"/api/v1/users/{world.users['agent'].id}/tokens").json()
    assert listed["state"] == "revoked"


@pytest.mark.parametrize(
    "change",
    [{"password": "a new password 1"}, {"role": "inspector"}, {"active": False}],
    ids=["password-reset", "role-change", "deactivation"],
)
def test_a_token_ends_like_a_session(
    login_as: Login, app_client: TestClient, bearer_for: Bearer, world: Any, change: dict[str, Any]
) -> None:
    headers = bearer_for("agent")
    admin = login_as("admin")
    assert admin.patch(f"/api/v1/users/{world.users['agent'].id}", json=change).status_code == 200
    if change.get("active") is False:  # reactivated: the old token stays dead
        admin.patch(f"/api/v1/users/{world.users['agent'].id}", json={"active": True})
    assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_logout_everywhere_revokes_the_users_tokens(
    login_as: Login, app_client: TestClient, bearer_for: Bearer, world: Any
) -> None:
    headers = bearer_for("agent")
    login_as("agent").post("/api/v1/auth/logout-everywhere")
    assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_the_command_line_lists_and_revokes(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIFANG_DATABASE_URL", raising=False)
    runner = CliRunner()
    runner.invoke(app, ["users", "create", "cad", "--role", "integration", "--no-password"])
    created = runner.invoke(
        app, ["users", "tokens", "create", "cad", "--name", "cad-import", "--days", "30"]
    )
    assert created.exit_code == 0 and created.stdout.startswith("hf_")
    listed = runner.invoke(app, ["users", "tokens", "list", "cad"])
    assert "cad-import" in listed.stdout and "live" in listed.stdout
    token_id = listed.stdout.split("\t", 1)[0]
    assert runner.invoke(app, ["users", "tokens", "revoke", token_id]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["users", "tokens", "list"]).stdout
