"""Item 1: a response leaves only after its transaction committed.

A failed commit is an error response; a reveal, a playback or an export whose audit event
cannot be written is not performed; an action and its audit event commit together or not
at all. On SQLite the write lock is held by another connection, on PostgreSQL the audit
table is locked; the app waits `LOCK_WAIT_MS` and gives up.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session
from starlette.types import Message, Receive, Scope, Send

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.domain.models import Escalation, Incident
from tests.security.conftest import PASSWORD, Login, audit_actions

Blocked = Callable[[], AbstractContextManager[None]]


def _phone_of(engine: Engine, escalation: Escalation) -> str:
    with Session(engine) as session:
        incident = session.get(Incident, escalation.incident_id)
        assert incident is not None
        return incident.caller_phone


def test_a_reveal_whose_audit_event_cannot_be_written_is_not_performed(
    claimed: TestClient, escalation: Escalation, engine: Engine, writes_blocked: Blocked
) -> None:
    phone = _phone_of(engine, escalation)
    with writes_blocked():
        reply = claimed.post(f"/api/v1/escalations/{escalation.id}/reveal-phone")
    assert reply.status_code == 503
    assert reply.headers["retry-after"]
    assert phone not in reply.text
    assert "phone.reveal" not in audit_actions(engine)


def test_a_reveal_that_commits_answers_with_the_number(
    claimed: TestClient, escalation: Escalation, engine: Engine
) -> None:
    reply = claimed.post(f"/api/v1/escalations/{escalation.id}/reveal-phone")
    assert reply.json() == {"phone": _phone_of(engine, escalation)}
    assert "phone.reveal" in audit_actions(engine)


def test_the_case_page_of_the_claim_holder_is_not_shown_unaudited(
    claimed: TestClient, escalation: Escalation, engine: Engine, writes_blocked: Blocked
) -> None:
    phone = _phone_of(engine, escalation)
    national = phone.removeprefix("+86")
    with writes_blocked():
        reply = claimed.get(f"/cases/{escalation.id}", headers={"Accept": "text/html"})
    assert reply.status_code == 503
    assert national not in reply.text
    assert "phone.reveal" not in audit_actions(engine)


def test_an_export_whose_audit_event_cannot_be_written_is_not_sent(
    login_as: Login, engine: Engine, writes_blocked: Blocked
) -> None:
    admin = login_as("admin")
    with writes_blocked():
        reply = admin.get("/api/v1/stats/export", params={"period": "2026-11"})
    assert reply.status_code == 503
    assert "stats.export" not in audit_actions(engine)


def test_a_login_whose_audit_event_cannot_be_written_starts_no_session(
    app_client: TestClient, engine: Engine, writes_blocked: Blocked, world: Any
) -> None:
    with writes_blocked():
        reply = app_client.post(
            "/api/v1/auth/login", json={"username": "agent", "password": PASSWORD}
        )
    assert reply.status_code == 503
    assert "set-cookie" not in reply.headers
    assert "login" not in audit_actions(engine)


def test_an_action_and_its_audit_event_commit_together_or_not_at_all(
    runtime: Runtime,
    login_as: Login,
    escalation: Escalation,
    engine: Engine,
    audit_refused: Callable[[], AbstractContextManager[None]],
) -> None:
    agent = login_as("agent")
    with (
        audit_refused(),
        TestClient(
            create_app(runtime),
            raise_server_exceptions=False,
            cookies=agent.cookies,
            headers=agent.headers,
        ) as plain,
    ):
        reply = plain.post(f"/api/v1/escalations/{escalation.id}/claim")
    assert reply.status_code >= 500
    with Session(engine) as session:
        unchanged = session.get(Escalation, escalation.id)
        assert unchanged is not None
        assert (unchanged.state, unchanged.claimed_by) == ("open", None)
    assert agent.post(f"/api/v1/escalations/{escalation.id}/claim").status_code == 200
    assert audit_actions(engine)[-1] == "escalation.claim"


class CommitWitness:
    """ASGI wrapper: when a response starts, counts the rows of a table from another
    connection, i.e. what is committed at the moment the first byte leaves."""

    def __init__(self, app: Any, engine: Engine, table: str) -> None:
        self.app, self.engine, self.table = app, engine, table
        self.rows_at_start: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def witnessed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                with self.engine.connect() as conn:
                    count = conn.execute(text(f"SELECT count(*) FROM {self.table}")).scalar_one()
                self.rows_at_start.append(int(count))
            await send(message)

        await self.app(scope, receive, witnessed_send)


@pytest.mark.parametrize(
    ("path", "body", "table"),
    [
        ("/api/v1/units", {"code": "S9", "name": "新站", "level": "station"}, "units"),
        ("/units", {"code": "S9", "name": "新站", "level": "station"}, "units"),
    ],
    ids=["api", "console"],
)
def test_what_a_response_reports_is_committed_before_it_leaves(
    runtime: Runtime, login_as: Login, engine: Engine, path: str, body: dict[str, str], table: str
) -> None:
    admin = login_as("admin")
    witness = CommitWitness(create_app(runtime), engine, table)
    with engine.connect() as conn:
        before = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    with TestClient(witness, cookies=admin.cookies, headers=admin.headers) as client:
        if path.startswith("/api/"):
            reply = client.post(path, json=body)
        else:
            reply = client.post(path, data=body, follow_redirects=False)
    assert reply.status_code in (201, 303), reply.text
    assert witness.rows_at_start == [before + 1]
