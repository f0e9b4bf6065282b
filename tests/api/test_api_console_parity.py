"""The agent's console over the API: the queue's views, filters and exact search with a
total, the case's and the ticket's timeline, the call log of click-to-call, deferral to a
date and time, the ticket list's filters — and all of them in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import Escalation
from huifang.telephony.base import BridgeProgress
from tests.factories import make_escalation, make_incident

Login = Callable[[str], TestClient]


class ConnectedBridge:
    """A line on which every call connects at once."""

    async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str:
        return f"line-{attempt_ref}"

    def bridge_progress(self, call_id: str) -> BridgeProgress | None:
        return BridgeProgress.connected


@pytest.fixture
def cases(engine: Engine, world: Any, clock: FakeClock) -> dict[str, Escalation]:
    with Session(engine, expire_on_commit=False) as session:
        east = make_escalation(
            session, now=clock.now(),
            incident=make_incident(session, unit=world.station, source="12345",
                                   caller_phone="+8613712345678", external_id="12345-0001"),
        )  # fmt: skip
        west = make_escalation(
            session, now=clock.now(), incident=make_incident(session, unit=world.other_station)
        )
        session.commit()
    return {"east": east, "west": west}


def test_the_queue_filters_by_unit_subtree_and_source_with_a_total(
    login_as: Login, cases: dict[str, Escalation], world: Any
) -> None:
    agent = login_as("agent")
    reply = agent.get("/api/v1/escalations", params={"unit_id": world.branch.id, "source": "12345"})
    assert [item["id"] for item in reply.json()] == [cases["east"].id]
    assert reply.headers["X-Total-Count"] == "1"
    assert reply.json()[0]["unit_name"] == "东门派出所"


def test_the_queue_searches_a_phone_exactly(login_as: Login, cases: dict[str, Escalation]) -> None:
    agent = login_as("agent")
    found = agent.get("/api/v1/escalations", params={"phone": "13712345678"}).json()
    assert [item["id"] for item in found] == [cases["east"].id]
    refused = agent.get("/api/v1/escalations", params={"phone": "not a phone"})
    assert refused.status_code == 422


def test_claims_of_others_show_who_holds_them(
    login_as: Login, cases: dict[str, Escalation]
) -> None:
    login_as("agent2").post(f"/api/v1/escalations/{cases['east'].id}/claim")
    [item] = login_as("agent").get("/api/v1/escalations", params={"view": "others"}).json()
    assert (item["id"], item["claimed_by_name"]) == (cases["east"].id, "agent2")


def test_a_deferral_takes_a_local_date_and_time(
    login_as: Login, cases: dict[str, Escalation], clock: FakeClock
) -> None:
    agent = login_as("agent")
    agent.post(f"/api/v1/escalations/{cases['east'].id}/claim")
    local = (clock.now() + timedelta(hours=8, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    reply = agent.post(f"/api/v1/escalations/{cases['east'].id}/defer", json={"retry_at": local})
    assert reply.status_code == 200, reply.text
    # Asia/Shanghai is UTC+8: half an hour from now
    assert reply.json()["retry_after"].startswith(
        (clock.now() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    )
    both = agent.post(
        f"/api/v1/escalations/{cases['west'].id}/defer",
        json={"retry_at": local, "retry_in_minutes": 5},
    )
    assert both.status_code == 422


def test_the_case_timeline_and_its_call_log(
    login_as: Login, cases: dict[str, Escalation], runtime: Runtime
) -> None:
    runtime.services["telephony"] = ConnectedBridge()
    agent = login_as("agent")
    case = cases["east"].id
    agent.post(f"/api/v1/escalations/{case}/claim")
    started = agent.post(f"/api/v1/escalations/{case}/callback").json()
    call = agent.get(f"/api/v1/escalations/{case}/calls/{started['call_id']}").json()
    assert call["line"] == "connected"
    ended = agent.post(
        f"/api/v1/escalations/{case}/calls/{started['call_id']}/end", json={"outcome": "reached"}
    )
    assert ended.json()["outcome"] == "reached"
    assert (
        agent.post(
            f"/api/v1/escalations/{case}/calls/{started['call_id']}/end", json={"outcome": "busy"}
        ).status_code
        == 409
    )
    timeline = agent.get(f"/api/v1/escalations/{case}/timeline").json()
    kinds = [entry["kind"] for entry in timeline]
    assert kinds[:2] == ["incident", "escalation"]
    assert {"agent_action", "agent_call"} <= set(kinds)
    assert [c["id"] for c in agent.get(f"/api/v1/escalations/{case}/calls").json()] == [
        started["call_id"]
    ]
    other = login_as("agent2").get(f"/api/v1/escalations/{case}/calls/{started['call_id']}")
    assert other.status_code == 403


def test_the_ticket_timeline_and_list_filters(
    login_as: Login, cases: dict[str, Escalation], world: Any
) -> None:
    agent = login_as("agent")
    case = cases["east"].id
    agent.post(f"/api/v1/escalations/{case}/claim")
    ticket = agent.post(
        f"/api/v1/escalations/{case}/resolve", json={"outcome": "ticket", "findings": "属实"}
    ).json()["ticket"]
    chief = login_as("supervisor")
    steps = [e["code"] for e in chief.get(f"/api/v1/tickets/{ticket['id']}/timeline").json()
             if e["kind"] == "ticket_change"]  # fmt: skip
    assert steps == ["issue"]
    assert (
        login_as("other_supervisor").get(f"/api/v1/tickets/{ticket['id']}/timeline").status_code
        == 403
    )
    by_number = agent.get("/api/v1/tickets", params={"number": ticket["number"]})
    assert [t["id"] for t in by_number.json()] == [ticket["id"]]
    assert by_number.headers["X-Total-Count"] == "1"
    elsewhere = agent.get("/api/v1/tickets", params={"unit_id": world.other_station.id})
    assert (elsewhere.json(), elsewhere.headers["X-Total-Count"]) == ([], "0")
    subtree = agent.get("/api/v1/tickets", params={"unit_id": world.bureau.id, "overdue": False})
    assert [t["id"] for t in subtree.json()] == [ticket["id"]]


def test_the_openapi_document_names_every_agent_endpoint(login_as: Login) -> None:
    paths = login_as("agent").get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/escalations/{escalation_id}/timeline",
        "/api/v1/tickets/{ticket_id}/timeline",
        "/api/v1/escalations/{escalation_id}/calls",
        "/api/v1/escalations/{escalation_id}/calls/{call_id}",
        "/api/v1/escalations/{escalation_id}/calls/{call_id}/end",
    ):
        assert path in paths, path
    queue_parameters = {p["name"] for p in paths["/api/v1/escalations"]["get"]["parameters"]}
    assert {
        "view",
        "unit_id",
        "source",
        "category",
        "phone",
        "incident_number",
        "sort",
    } <= queue_parameters
