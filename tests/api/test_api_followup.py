"""The follow-up REST API end to end: queue → claim → resolve → ticket → rectification →
second callback; masking and reveals; every role denied what it must not see or do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.domain.models import AuditEvent, CallAttempt, Contact, Escalation, Recording
from huifang.telephony.base import BridgeProgress
from tests.factories import make_escalation, make_incident

Login = Callable[[str], TestClient]


@pytest.fixture
def escalation(engine: Engine, world: Any) -> Escalation:
    with Session(engine, expire_on_commit=False) as session:
        item = make_escalation(session, incident=make_incident(session, unit=world.station))
        session.commit()
    return item


def actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [r[0] for r in session.exec(select(AuditEvent.action).order_by(AuditEvent.id))]  # type: ignore[call-overload,arg-type]


def ticket_for(agent: TestClient, escalation: Escalation) -> dict[str, Any]:
    assert agent.post(f"/api/v1/escalations/{escalation.id}/claim").status_code == 200
    reply = agent.post(
        f"/api/v1/escalations/{escalation.id}/resolve",
        json={"outcome": "ticket", "findings": "出警迟到属实"},
    )
    assert reply.status_code == 200, reply.text
    ticket: dict[str, Any] = reply.json()["ticket"]
    return ticket


def test_queue_lists_items_with_masked_numbers(login_as: Login, escalation: Escalation) -> None:
    [item] = login_as("agent").get("/api/v1/escalations").json()
    assert item["id"] == escalation.id
    assert "****" in item["citizen_phone"]


def test_detail_masks_the_incident_phone(login_as: Login, escalation: Escalation) -> None:
    detail = login_as("inspector").get(f"/api/v1/escalations/{escalation.id}").json()
    assert "****" in detail["incident"]["caller_phone"]
    assert detail["summary"] == escalation.summary


def test_lifecycle_to_a_closed_ticket(
    login_as: Login, escalation: Escalation, engine: Engine
) -> None:
    agent, chief = login_as("agent"), login_as("supervisor")
    ticket = ticket_for(agent, escalation)
    assert ticket["state"] == "issued"
    assert (
        chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={}).json()["state"]
        == "acknowledged"
    )
    reply = chief.post(
        f"/api/v1/tickets/{ticket['id']}/rectification",
        data={"text": "已批评教育，落实首接责任"},
        files=[("files", ("report.txt", b"rectified", "text/plain"))],
    )
    assert reply.json()["state"] == "rectified"
    with Session(engine) as session:
        assert session.exec(select(CallAttempt.purpose)).all()[0][0] == "second_callback"  # type: ignore[call-overload]
    closed = agent.post(
        f"/api/v1/tickets/{ticket['id']}/second-callback", json={"outcome": "satisfied"}
    )
    assert closed.json()["state"] == "closed"
    detail = login_as("inspector").get(f"/api/v1/tickets/{ticket['id']}").json()
    assert [c["event"] for c in detail["changes"]] == [
        "issue",
        "acknowledge",
        "report",
        "verify",
        "close",
    ]
    [attachment] = detail["attachments"]
    download = chief.get(f"/api/v1/tickets/{ticket['id']}/attachments/{attachment['id']}")
    assert download.content == b"rectified"


def test_lifecycle_to_a_reopened_ticket(login_as: Login, escalation: Escalation) -> None:
    agent, chief = login_as("agent"), login_as("supervisor")
    ticket = ticket_for(agent, escalation)
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    chief.post(f"/api/v1/tickets/{ticket['id']}/rectification", data={"text": "已整改"})
    reopened = agent.post(
        f"/api/v1/tickets/{ticket['id']}/second-callback",
        json={"outcome": "unsatisfied", "words": "还是没人管"},
    ).json()
    assert (reopened["state"], reopened["reopen_count"]) == ("acknowledged", 1)
    round_ = reopened["second_callback"]
    assert (round_["state"], round_["settled_via"], round_["citizen_words"]) == (
        "reopened", "agent", "还是没人管")  # fmt: skip


def test_second_agent_gets_409_on_a_claimed_item(login_as: Login, escalation: Escalation) -> None:
    assert login_as("agent").post(f"/api/v1/escalations/{escalation.id}/claim").status_code == 200
    assert login_as("agent2").post(f"/api/v1/escalations/{escalation.id}/claim").status_code == 409


def test_claim_holder_reveals_the_number_and_it_is_audited(
    login_as: Login, escalation: Escalation, engine: Engine
) -> None:
    agent = login_as("agent")
    agent.post(f"/api/v1/escalations/{escalation.id}/claim")
    reply = agent.post(f"/api/v1/escalations/{escalation.id}/reveal-phone")
    assert reply.json()["phone"].startswith("+86")
    assert "phone.reveal" in actions(engine)


def test_other_agent_cannot_reveal_the_number(login_as: Login, escalation: Escalation) -> None:
    login_as("agent").post(f"/api/v1/escalations/{escalation.id}/claim")
    assert (
        login_as("agent2").post(f"/api/v1/escalations/{escalation.id}/reveal-phone").status_code
        == 403
    )


def test_supervisor_cannot_read_another_units_ticket_by_id(
    login_as: Login, escalation: Escalation
) -> None:
    ticket = ticket_for(login_as("agent"), escalation)
    assert login_as("other_supervisor").get(f"/api/v1/tickets/{ticket['id']}").status_code == 403
    assert login_as("supervisor").get(f"/api/v1/tickets/{ticket['id']}").status_code == 200


def test_supervisor_list_hides_other_units(login_as: Login, escalation: Escalation) -> None:
    ticket_for(login_as("agent"), escalation)
    assert login_as("other_supervisor").get("/api/v1/tickets").json() == []


@pytest.mark.parametrize(
    ("username", "method", "path"),
    [
        ("supervisor", "get", "/api/v1/escalations"),
        ("integration", "get", "/api/v1/escalations"),
        ("supervisor", "post", "/api/v1/escalations/{e}/claim"),
        ("inspector", "post", "/api/v1/escalations/{e}/claim"),
        ("agent", "get", "/api/v1/audit"),
        ("supervisor", "get", "/api/v1/audit"),
        ("agent", "get", "/api/v1/users"),
        ("agent", "post", "/api/v1/tickets/mark-overdue"),
        ("integration", "get", "/api/v1/tickets"),
        ("agent", "post", "/api/v1/units"),
    ],
)
def test_role_is_denied(
    login_as: Login, escalation: Escalation, username: str, method: str, path: str
) -> None:
    client = login_as(username)
    reply = getattr(client, method)(
        path.format(e=escalation.id), **({"json": {}} if method == "post" else {})
    )
    assert reply.status_code == 403


def test_agent_cannot_acknowledge_for_the_unit(login_as: Login, escalation: Escalation) -> None:
    agent = login_as("agent")
    ticket = ticket_for(agent, escalation)
    assert agent.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={}).status_code == 403


def test_supervisor_cannot_request_more(login_as: Login, escalation: Escalation) -> None:
    chief = login_as("supervisor")
    ticket = ticket_for(login_as("agent"), escalation)
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    chief.post(f"/api/v1/tickets/{ticket['id']}/rectification", data={"text": "已整改"})
    assert (
        chief.post(f"/api/v1/tickets/{ticket['id']}/request-more", json={"note": "x"}).status_code
        == 403
    )
    assert (
        login_as("inspector")
        .post(f"/api/v1/tickets/{ticket['id']}/request-more", json={"note": "请补充"})
        .status_code
        == 200
    )


def _recording(engine: Engine, escalation: Escalation, runtime: Runtime) -> int:
    path = runtime.settings.data_dir / "r.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF....WAVE")
    with Session(engine, expire_on_commit=False) as session:
        contact = session.get(Contact, escalation.contact_id)
        assert contact is not None
        attempt = CallAttempt(contact_id=contact.id, campaign_id=contact.campaign_id, state="completed",  # type: ignore[arg-type]
                              due_at=escalation.created_at, created_at=escalation.created_at)  # fmt: skip
        session.add(attempt)
        session.flush()
        recording = Recording(
            attempt_id=attempt.id, path=str(path), created_at=escalation.created_at
        )
        session.add(recording)
        session.commit()
        return recording.id  # type: ignore[return-value]


def test_agent_cannot_listen_to_a_recording_outside_their_claim(
    login_as: Login, escalation: Escalation, engine: Engine, runtime: Runtime
) -> None:
    recording_id = _recording(engine, escalation, runtime)
    login_as("agent2").post(f"/api/v1/escalations/{escalation.id}/claim")
    assert login_as("agent").get(f"/api/v1/recordings/{recording_id}/audio").status_code == 403


def test_claim_holder_listens_and_it_is_audited(
    login_as: Login, escalation: Escalation, engine: Engine, runtime: Runtime
) -> None:
    recording_id = _recording(engine, escalation, runtime)
    agent = login_as("agent")
    agent.post(f"/api/v1/escalations/{escalation.id}/claim")
    reply = agent.get(f"/api/v1/recordings/{recording_id}/audio")
    assert reply.status_code == 200 and reply.content == b"RIFF....WAVE"
    assert "recording.play" in actions(engine)


def test_click_to_call_without_a_bridge_is_501(login_as: Login, escalation: Escalation) -> None:
    agent = login_as("agent")
    agent.post(f"/api/v1/escalations/{escalation.id}/claim")
    reply = agent.post(f"/api/v1/escalations/{escalation.id}/callback")
    assert reply.status_code == 501
    assert "cannot bridge" in reply.json()["detail"]


class RecordingBridge:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str:
        self.calls.append((agent_phone, citizen_phone, attempt_ref))
        return "bridge-1"

    def bridge_progress(self, call_id: str) -> BridgeProgress | None:
        return BridgeProgress.ringing_agent if call_id == "bridge-1" else None


def test_click_to_call_rings_the_agent_then_the_citizen(
    login_as: Login, escalation: Escalation, runtime: Runtime, engine: Engine
) -> None:
    bridge = RecordingBridge()
    runtime.services["telephony"] = bridge
    agent = login_as("agent")
    agent.post(f"/api/v1/escalations/{escalation.id}/claim")
    reply = agent.post(f"/api/v1/escalations/{escalation.id}/callback")
    assert reply.json()["provider_call_id"] == "bridge-1"
    [(agent_phone, citizen_phone, ref)] = bridge.calls
    assert agent_phone == "+8613900000001" and citizen_phone.startswith("+86138")
    assert "escalation.callback" in actions(engine)


def test_click_to_call_without_the_claim_is_refused(
    login_as: Login, escalation: Escalation, runtime: Runtime
) -> None:
    runtime.services["telephony"] = RecordingBridge()
    login_as("agent").post(f"/api/v1/escalations/{escalation.id}/claim")
    assert (
        login_as("agent2").post(f"/api/v1/escalations/{escalation.id}/callback").status_code == 409
    )


def test_notice_export_is_audited_and_scoped(
    login_as: Login, escalation: Escalation, world: Any, engine: Engine
) -> None:
    ticket = ticket_for(login_as("agent"), escalation)
    page = login_as("supervisor").get(
        f"/api/v1/notices/{world.branch.id}", params={"month": "2026-11"}
    )
    assert page.status_code == 200 and ticket["number"] in page.text
    assert "notice.export" in actions(engine)
    denied = login_as("other_supervisor").get(
        f"/api/v1/notices/{world.branch.id}", params={"month": "2026-11"}
    )
    assert denied.status_code == 403


def test_every_state_change_is_in_the_audit_log(login_as: Login, escalation: Escalation) -> None:
    agent, chief = login_as("agent"), login_as("supervisor")
    ticket = ticket_for(agent, escalation)
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    logged = [e["action"] for e in login_as("inspector").get("/api/v1/audit").json()]
    for action in ("escalation.claim", "escalation.resolve", "ticket.issue", "ticket.acknowledge"):
        assert action in logged


def test_bad_argument_is_422_not_500(login_as: Login, escalation: Escalation) -> None:
    agent = login_as("agent")
    agent.post(f"/api/v1/escalations/{escalation.id}/claim")
    reply = agent.post(
        f"/api/v1/escalations/{escalation.id}/resolve", json={"outcome": "ticket", "findings": " "}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "findings"]


def test_imported_complaint_reaches_the_queue(
    app_client: TestClient, bearer_for: Callable[[str], dict[str, str]], login_as: Login, world: Any
) -> None:
    csv = (
        "source,external_id,occurred_at,handled_at,caller_phone,unit,summary,is_complaint\n"
        "12345,C-1,2026-11-20 09:00,2026-11-20 11:00,13800000002,S1,投诉民警态度差,yes\n"
    ).encode()
    files = {"file": ("complaints.csv", csv, "text/csv")}
    reply = app_client.post(
        "/api/v1/incidents/import", files=files, headers=bearer_for("integration")
    )
    assert reply.status_code == 200, reply.text
    [item] = login_as("agent").get("/api/v1/escalations").json()
    assert (item["origin"], item["incident_external_id"], item["citizen_phone"]) == (
        "import",
        "C-1",
        "138****0002",
    )
