"""The second callback over HTTP: a ticket shows its round's state; the worklist lists the
rounds waiting for an agent with masked numbers; the number is revealed to agents, audited;
an agent records the result of their own call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.clock import FakeClock
from huifang.domain.campaigns import opt_out
from huifang.domain.models import AuditEvent, Escalation, Incident
from tests.api.test_api_followup import ticket_for
from tests.factories import make_escalation, make_incident

Login = Callable[[str], TestClient]


def reported(login_as: Login, engine: Engine, world: Any, clock: FakeClock, *,
             opted_out: bool = False) -> dict[str, Any]:  # fmt: skip
    """A ticket whose unit reported its rectification, as the API returns it."""
    with Session(engine, expire_on_commit=False) as session:
        incident = make_incident(session, unit=world.station)
        if opted_out:
            opt_out(session, phone=incident.caller_phone, source="sms", now=clock.now())
        escalation = make_escalation(session, incident=incident)
        session.commit()
    ticket = ticket_for(login_as("agent"), escalation)
    chief = login_as("supervisor")
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    reply = chief.post(f"/api/v1/tickets/{ticket['id']}/rectification", data={"text": "已整改"})
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def test_a_reported_ticket_shows_its_second_callback_pending(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock
) -> None:
    ticket = reported(login_as, engine, world, clock)
    assert (ticket["second_callback"]["state"], ticket["second_callback"]["round"]) == (
        "pending",
        1,
    )
    [listed] = login_as("inspector").get("/api/v1/tickets").json()
    assert listed["second_callback"]["state"] == "pending"


def test_the_worklist_lists_rounds_waiting_for_an_agent_with_masked_numbers(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock
) -> None:
    waiting = reported(login_as, engine, world, clock, opted_out=True)
    dialing = reported(login_as, engine, world, clock)
    agent = login_as("agent")
    [item] = agent.get("/api/v1/second-callbacks").json()
    assert (item["ticket_id"], item["state"], item["last_call"]) == (
        waiting["id"],
        "unreachable",
        "opted_out",
    )
    assert "****" in item["citizen_phone"] and item["unit_name"] == "东门派出所"
    every = agent.get("/api/v1/second-callbacks?state=open").json()
    assert {i["ticket_id"] for i in every} == {waiting["id"], dialing["id"]}
    assert agent.get("/api/v1/second-callbacks?state=calling").json() == []


def test_an_agent_sees_the_number_and_the_reveal_is_audited(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock
) -> None:
    ticket = reported(login_as, engine, world, clock)
    round_id = ticket["second_callback"]["id"]
    phone = (
        login_as("agent").post(f"/api/v1/second-callbacks/{round_id}/reveal-phone").json()["phone"]
    )
    with Session(engine) as session:
        escalation = session.get(Escalation, ticket["escalation_id"])
        assert phone == session.get(Incident, escalation.incident_id).caller_phone  # type: ignore[union-attr]
        audited = session.exec(select(AuditEvent).where(AuditEvent.action == "phone.reveal")).one()
    assert audited.target_id == str(round_id)


@pytest.mark.parametrize("role", ["supervisor", "inspector", "integration"])
def test_others_do_not_see_the_number(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock, role: str
) -> None:
    round_id = reported(login_as, engine, world, clock)["second_callback"]["id"]
    assert (
        login_as(role).post(f"/api/v1/second-callbacks/{round_id}/reveal-phone").status_code == 403
    )


def test_a_supervisor_does_not_read_the_worklist(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock
) -> None:
    assert login_as("supervisor").get("/api/v1/second-callbacks").status_code == 403


def test_an_agents_result_closes_the_ticket_and_a_second_one_is_refused(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock
) -> None:
    ticket = reported(login_as, engine, world, clock)
    agent = login_as("agent")
    url = f"/api/v1/tickets/{ticket['id']}/second-callback"
    closed = agent.post(url, json={"outcome": "basically_satisfied", "words": "基本解决了"}).json()
    assert closed["state"] == "closed"
    assert (closed["second_callback"]["state"], closed["second_callback"]["outcome"]) == (
        "satisfied", "basically_satisfied")  # fmt: skip
    assert agent.post(url, json={"outcome": "satisfied"}).status_code == 409


def test_an_unclear_result_is_refused_naming_the_field(
    login_as: Login, engine: Engine, world: Any, clock: FakeClock
) -> None:
    ticket = reported(login_as, engine, world, clock)
    reply = login_as("agent").post(
        f"/api/v1/tickets/{ticket['id']}/second-callback", json={"outcome": "unclear"}
    )
    assert reply.status_code == 422 and "outcome" in reply.text
