"""Admins edit a user over HTTP: PATCH /api/v1/users/{id}; what ends the user's sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from huifang.domain.models import AuditEvent

LoginAs = Callable[[str], TestClient]


def _me(client: TestClient) -> int:
    return client.get("/api/v1/auth/me").status_code


def _patch(login_as: LoginAs, world: Any, username: str, body: dict[str, Any]) -> Any:
    return login_as("admin").patch(f"/api/v1/users/{world.users[username].id}", json=body)


def test_a_role_change_ends_the_users_sessions(login_as: LoginAs, world: Any) -> None:
    agent = login_as("agent")
    assert _patch(login_as, world, "agent", {"role": "inspector"}).status_code == 200
    assert _me(agent) == 401


def test_a_deactivation_ends_the_users_sessions_for_good(login_as: LoginAs, world: Any) -> None:
    agent = login_as("agent")
    assert _patch(login_as, world, "agent", {"active": False}).status_code == 200
    _patch(login_as, world, "agent", {"active": True})  # active again: a new login is needed
    assert _me(agent) == 401


def test_a_password_reset_ends_the_users_sessions(login_as: LoginAs, world: Any) -> None:
    agent = login_as("agent")
    assert _patch(login_as, world, "agent", {"password": "a new password 1"}).status_code == 200
    assert _me(agent) == 401


def test_a_display_name_change_keeps_the_users_sessions(login_as: LoginAs, world: Any) -> None:
    agent = login_as("agent")
    assert _patch(login_as, world, "agent", {"display_name": "李四"}).status_code == 200
    assert _me(agent) == 200


def test_the_reply_is_the_edited_user_without_the_hash(login_as: LoginAs, world: Any) -> None:
    reply = _patch(login_as, world, "agent", {"display_name": "李四", "role": "inspector"})
    body = reply.json()
    assert (body["display_name"], body["role"], body["username"]) == ("李四", "inspector", "agent")
    assert "password_hash" not in body and "password" not in body


def test_the_audit_event_lists_the_changed_fields_and_not_the_password(
    login_as: LoginAs, world: Any, engine: Engine
) -> None:
    secret = "a new password 1"
    body = {"display_name": "李四", "phone": "+8613900000001", "password": secret}
    _patch(login_as, world, "agent", body)  # the phone is unchanged: not listed
    with Session(engine) as session:
        events = session.execute(
            select(AuditEvent).where(col(AuditEvent.action) == "user.update")
        ).scalars()
        details = [e.detail for e in events]
    assert details == [{"display_name": "李四", "password": "reset"}]
    assert secret not in str(details)


def test_a_non_admin_may_not_edit_a_user(login_as: LoginAs, world: Any) -> None:
    reply = login_as("agent").patch(
        f"/api/v1/users/{world.users['agent2'].id}", json={"display_name": "x"}
    )
    assert reply.status_code == 403


def test_an_admin_may_not_deactivate_themselves(login_as: LoginAs, world: Any) -> None:
    admin = login_as("admin")
    reply = admin.patch(f"/api/v1/users/{world.users['admin'].id}", json={"active": False})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "active"]
    assert _me(admin) == 200


def test_an_admin_may_not_remove_their_own_admin_role(login_as: LoginAs, world: Any) -> None:
    admin = login_as("admin")
    reply = admin.patch(f"/api/v1/users/{world.users['admin'].id}", json={"role": "agent"})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "role"]


def test_editing_an_unknown_user_is_404(login_as: LoginAs, world: object) -> None:
    reply = login_as("admin").patch("/api/v1/users/999999", json={"display_name": "x"})
    assert reply.status_code == 404


def test_an_unknown_unit_is_422_naming_unit_id(login_as: LoginAs, world: Any) -> None:
    reply = _patch(login_as, world, "agent", {"unit_id": 999999})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "unit_id"]


def test_an_unknown_role_is_422_naming_role(login_as: LoginAs, world: Any) -> None:
    reply = _patch(login_as, world, "agent", {"role": "boss"})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "role"]


def test_a_supervisor_without_a_unit_is_422_naming_unit_id(login_as: LoginAs, world: Any) -> None:
    reply = _patch(login_as, world, "agent", {"role": "supervisor"})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "unit_id"]
