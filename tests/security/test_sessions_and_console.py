"""Item 8: logout ends the session on the server (a kept copy of the cookie is refused),
on the API and in the console; the console's API tokens page (item 4)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from huifang.api.auth import SESSION_COOKIE
from tests.security.conftest import Login


def _me(client: TestClient) -> int:
    return client.get("/api/v1/auth/me").status_code


@pytest.mark.parametrize(
    ("path", "expected"), [("/api/v1/auth/logout", 204), ("/logout", 303)], ids=["api", "console"]
)
def test_a_logged_out_cookie_is_refused_even_if_someone_kept_it(
    login_as: Login, path: str, expected: int
) -> None:
    client = login_as("agent")
    kept = client.cookies[SESSION_COOKIE]
    assert client.post(path, follow_redirects=False).status_code == expected
    client.cookies.set(SESSION_COOKIE, kept)
    assert _me(client) == 401


def test_logging_out_leaves_the_users_other_sessions_alone(login_as: Login) -> None:
    other_browser = login_as("agent")
    login_as("agent").post("/api/v1/auth/logout")
    assert _me(other_browser) == 200


def test_a_logout_is_audited(login_as: Login, engine: Engine) -> None:
    login_as("agent").post("/api/v1/auth/logout")
    with engine.connect() as conn:
        assert conn.execute(
            text("SELECT actor FROM audit_events WHERE action = 'logout'")
        ).all() == [("agent",)]


def test_the_tokens_page_shows_a_new_token_once(login_as: Login, world: Any) -> None:
    agent = login_as("agent")
    page = agent.post("/tokens", data={"name": "my-script", "days": "30"})
    assert page.status_code == 201
    assert "hf_" in page.text and "my-script" in page.text
    again = agent.get("/tokens")
    assert "my-script" in again.text and "hf_" not in again.text


def test_a_non_admin_cannot_create_a_token_for_someone_else_on_the_page(
    login_as: Login, world: Any
) -> None:
    page = login_as("agent").post(
        "/tokens", data={"name": "x", "days": "30", "owner_id": str(world.users["agent2"].id)}
    )
    assert page.status_code == 422
    assert "hf_" not in page.text


def test_an_admin_creates_an_integration_token_and_revokes_it_on_the_page(
    login_as: Login, app_client: TestClient, world: Any, engine: Engine
) -> None:
    admin = login_as("admin")
    page = admin.post(
        "/tokens",
        data={"name": "cad", "days": "90", "owner_id": str(world.users["integration"].id)},
    )
    token = page.text.split('<pre class="token">', 1)[1].split("<", 1)[0]
    assert (
        app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()[
            "username"
        ]
        == "integration"
    )
    with engine.connect() as conn:
        token_id = conn.execute(text("SELECT id FROM api_tokens")).scalar_one()
    assert admin.post(f"/tokens/{token_id}/revoke", follow_redirects=False).status_code == 303
    assert (
        app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
