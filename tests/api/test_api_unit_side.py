"""The unit's side over HTTP: its notices (read once), 申请延期 decided by an inspector, and
the 督办单 and the monthly 通报 as PDF — each in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.clock import FakeClock
from tests.factories import make_incident, make_ticket

Login = Callable[[str], TestClient]


@pytest.fixture
def ticket(engine: Engine, world: Any, clock: FakeClock) -> dict[str, Any]:
    with Session(engine, expire_on_commit=False) as session:
        made = make_ticket(session, incident=make_incident(session, unit=world.station),
                           now=clock.now())  # fmt: skip
        session.commit()
    return {"id": made.id, "number": made.number, "deadline_at": made.deadline_at}


def test_the_supervisor_reads_the_notice_of_a_new_ticket_once(
    login_as: Login, ticket: dict[str, Any]
) -> None:
    supervisor = login_as("supervisor")
    [notice] = supervisor.get("/api/v1/notifications").json()
    assert (notice["ticket_number"], notice["kind"], notice["read_at"]) == (
        ticket["number"], "issued", None
    )  # fmt: skip
    assert supervisor.post(f"/api/v1/notifications/{notice['id']}/read").status_code == 204
    assert supervisor.get("/api/v1/notifications").json()[0]["read_at"] is not None
    assert login_as("other_supervisor").get("/api/v1/notifications").json() == []


def test_an_approved_extension_moves_the_deadline(login_as: Login, ticket: dict[str, Any]) -> None:
    later: datetime = ticket["deadline_at"] + timedelta(days=4)
    asked = login_as("supervisor").post(
        f"/api/v1/tickets/{ticket['id']}/extensions",
        json={"deadline": later.isoformat(), "reason": "需市政部门配合"},
    )
    assert asked.status_code == 201, asked.text
    decided = login_as("inspector").post(
        f"/api/v1/tickets/{ticket['id']}/extensions/{asked.json()['id']}/approve",
        json={"note": "同意延期"},
    )
    assert decided.json()["state"] == "approved"
    deadline = login_as("inspector").get(f"/api/v1/tickets/{ticket['id']}").json()
    assert datetime.fromisoformat(deadline["deadline_at"]) == later


def test_a_supervisor_cannot_approve_their_own_extension(
    login_as: Login, ticket: dict[str, Any]
) -> None:
    supervisor = login_as("supervisor")
    later = (ticket["deadline_at"] + timedelta(days=1)).isoformat()
    asked = supervisor.post(
        f"/api/v1/tickets/{ticket['id']}/extensions", json={"deadline": later, "reason": "x"}
    ).json()
    reply = supervisor.post(
        f"/api/v1/tickets/{ticket['id']}/extensions/{asked['id']}/approve", json={}
    )
    assert reply.status_code == 403


def test_the_ticket_and_the_months_notice_print_as_pdf(
    login_as: Login, ticket: dict[str, Any], world: Any, clock: FakeClock
) -> None:
    supervisor = login_as("supervisor")
    sheet = supervisor.get(f"/api/v1/tickets/{ticket['id']}/pdf")
    assert (sheet.headers["content-type"], sheet.content[:5]) == ("application/pdf", b"%PDF-")
    month = (clock.now() + timedelta(hours=8)).strftime("%Y-%m")
    notice = supervisor.get(
        f"/api/v1/notices/{world.branch.id}", params={"month": month, "format": "pdf"}
    )
    assert notice.content[:5] == b"%PDF-"


def test_the_unit_side_is_in_the_openapi_document(login_as: Login) -> None:
    paths = login_as("admin").get("/openapi.json").json()["paths"]
    for path in [
        "/api/v1/notifications", "/api/v1/notifications/{notice_id}/read",
        "/api/v1/tickets/{ticket_id}/extensions",
        "/api/v1/tickets/{ticket_id}/extensions/{request_id}/{decision}",
        "/api/v1/tickets/{ticket_id}/pdf",
    ]:  # fmt: skip
        assert path in paths, path
