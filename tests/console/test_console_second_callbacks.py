"""Console pages of the closed loop: the second-callback worklist, a ticket's second-callback
state and rounds, an agent recording the result of their own call, a reopened ticket showing
the citizen's words; the campaign form's preview and its re-survey checkbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.campaigns import opt_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import AuditEvent, Campaign, Ticket
from huifang.domain.scripts import find_script
from huifang.domain.states import EscalationResolution
from huifang.followup.queue import claim, resolve
from huifang.followup.tickets import (
    acknowledge,
    record_second_callback_result,
    report_rectification,
)
from tests.factories import make_escalation, make_incident, make_unit, make_user

LoggedIn = Callable[[str], str]


def reported_ticket(engine: Engine, clock: FakeClock, *, opted_out: bool = False) -> Ticket:
    """A complaint turned into a ticket whose unit has reported its rectification."""
    with Session(engine, expire_on_commit=False) as session:
        unit = make_unit(session)
        incident = make_incident(session, unit=unit)
        if opted_out:
            opt_out(session, phone=incident.caller_phone, source="sms", now=clock.now())
        agent, chief = (
            make_user(session, role="agent"),
            make_user(session, role="supervisor", unit=unit),
        )
        item = make_escalation(session, incident=incident)
        claim(session, item.id, agent=agent, now=clock.now(), lease_minutes=30)  # type: ignore[arg-type]
        ticket = resolve(session, item.id, agent=agent, outcome=EscalationResolution.ticket,  # type: ignore[arg-type]
                         findings="属实", now=clock.now())  # fmt: skip
        assert ticket is not None and ticket.id is not None
        acknowledge(session, ticket.id, actor=chief, now=clock.now())
        report_rectification(session, ticket.id, actor=chief, text="已整改", now=clock.now())
        session.commit()
        return ticket


def test_the_worklist_shows_the_rounds_waiting_for_an_agent(
    client: TestClient,
    logged_in: LoggedIn,
    sqlite_engine: Engine,
    clock: FakeClock,
) -> None:
    waiting = reported_ticket(sqlite_engine, clock, opted_out=True)
    dialing = reported_ticket(sqlite_engine, clock)
    logged_in("agent")
    page = client.get("/second-callbacks").text
    assert waiting.number in page and dialing.number not in page
    assert "待人工回访" in page and "****" in page
    assert dialing.number in client.get("/second-callbacks?show=open").text


def test_an_agent_reveals_the_number_in_place_and_it_is_audited(
    client: TestClient,
    logged_in: LoggedIn,
    sqlite_engine: Engine,
    clock: FakeClock,
) -> None:
    reported_ticket(sqlite_engine, clock, opted_out=True)
    token = logged_in("agent")
    page = client.get("/second-callbacks").text
    round_id = page.split('data-second-callback="', 1)[1].split('"', 1)[0]
    reply = client.post(f"/second-callbacks/{round_id}/reveal", headers={"X-CSRF-Token": token})
    assert "+86138" in reply.text
    with Session(sqlite_engine) as session:
        reveal = session.exec(select(AuditEvent).where(AuditEvent.action == "phone.reveal")).one()  # type: ignore[call-overload]
    assert (reveal[0].target_type, reveal[0].target_id) == ("second_callback", round_id)


def test_a_ticket_shows_its_second_callback_and_the_agent_records_the_result(
    client: TestClient,
    logged_in: LoggedIn,
    sqlite_engine: Engine,
    clock: FakeClock,
) -> None:
    ticket = reported_ticket(sqlite_engine, clock)
    token = logged_in("agent")
    page = client.get(f"/tickets/{ticket.id}").text
    assert 'id="second-callback-state"' in page and "待拨打" in page
    assert 'id="second-callback-form"' in page
    assert "待拨打" in client.get("/tickets").text
    reply = client.post(
        f"/tickets/{ticket.id}/second-callback",
        data={"csrf_token": token, "outcome": "satisfied", "words": "已经解决了", "note": ""},
    )
    assert reply.headers["location"] == f"/tickets/{ticket.id}"
    closed = client.get(f"/tickets/{ticket.id}").text
    assert "满意，已办结" in closed and "已经解决了" in closed and "回访员致电" in closed


def test_a_refused_result_is_shown_as_a_message(
    client: TestClient,
    logged_in: LoggedIn,
    sqlite_engine: Engine,
    clock: FakeClock,
) -> None:
    ticket = reported_ticket(sqlite_engine, clock)
    token = logged_in("agent")
    data = {"csrf_token": token, "outcome": "satisfied"}
    client.post(f"/tickets/{ticket.id}/second-callback", data=data)
    again = client.post(f"/tickets/{ticket.id}/second-callback", data=data)
    assert again.status_code == 303 and "flash" in again.cookies


def test_a_reopened_ticket_shows_what_the_citizen_said(
    client: TestClient,
    logged_in: LoggedIn,
    sqlite_engine: Engine,
    clock: FakeClock,
) -> None:
    ticket = reported_ticket(sqlite_engine, clock)
    with Session(sqlite_engine) as session:
        record_second_callback_result(
            session, ticket.id, Satisfaction.unsatisfied, clock.now(), None,  # type: ignore[arg-type]
            question="请问您现在对处理结果是否满意？", words="还是没人来处理",
        )  # fmt: skip
        session.commit()
    logged_in("agent")
    page = client.get(f"/tickets/{ticket.id}").text
    banner = page.split('id="reopened-banner"', 1)[1].split("</p>", 1)[0]
    assert "重新打开" in banner and "还是没人来处理" in banner and "是否满意" in banner


def campaign_form(engine: Engine, clock: FakeClock, token: str, **extra: str) -> dict[str, str]:
    with Session(engine) as session:
        version_id = find_script(session, "survey-110.zh-CN", clock.now()).id
        session.commit()
    day = (clock.now() - timedelta(hours=1)).date().isoformat()
    return {
        "csrf_token": token, "name": "复查", "script_version_id": str(version_id),
        "handled_from": day, "handled_to": day, "channels": "voice", **extra,
    }  # fmt: skip


def test_the_campaign_form_previews_what_it_adds_and_leaves_out(
    client: TestClient,
    logged_in: LoggedIn,
    sqlite_engine: Engine,
    clock: FakeClock,
) -> None:
    with Session(sqlite_engine) as session:
        unit = make_unit(session)
        for n in range(3):
            make_incident(session, unit=unit, caller_phone=f"+86136{n:08d}",
                          handled_at=clock.now() - timedelta(hours=1))  # fmt: skip
        session.commit()
    token = logged_in("admin")
    client.post("/campaigns", data=campaign_form(sqlite_engine, clock, token))
    preview = client.post(
        "/campaigns/preview", data=campaign_form(sqlite_engine, clock, token),
        headers={"X-CSRF-Token": token},
    ).text  # fmt: skip
    assert "将新增 0 个回访对象" in preview and "在其他任务中回访中 3" in preview
    again = campaign_form(sqlite_engine, clock, token, resurvey="true")
    assert "将新增 3 个回访对象" in client.post("/campaigns/preview", data=again).text
    assert 'name="resurvey"' in client.get("/campaigns").text
    reply = client.post("/campaigns", data=again)
    assert "3" in reply.cookies["flash"]
    with Session(sqlite_engine) as session:
        latest = session.exec(select(Campaign).order_by(Campaign.id.desc())).first()  # type: ignore[union-attr]
    assert latest is not None and latest[0].selection["resurvey"] is True
