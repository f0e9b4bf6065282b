"""One timeline per case and per ticket: SMS, calls, recordings, answers with their
questions' text, review labels, agents' actions and calls, ticket steps, second callbacks —
in order, with who and when, linked; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.enums import Satisfaction
from huifang.domain.models import Answer, CallAttempt, Escalation, Recording, SmsMessage, Ticket
from huifang.domain.states import AgentCallOutcome, EscalationResolution
from huifang.errors import Forbidden
from huifang.followup import agent_calls
from huifang.followup.queue import claim, defer, resolve
from huifang.followup.tickets import (
    acknowledge,
    record_second_callback_result,
    report_rectification,
)
from huifang.followup.timeline import TimelineEntry, TimelineKind, case_timeline, ticket_timeline
from tests.factories import make_escalation, make_incident

TZ = ZoneInfo("Asia/Shanghai")
LEASE = 30


def _call_with_answers(session: Session, escalation: Escalation, clock: FakeClock) -> CallAttempt:
    """The survey call that opened `escalation` (made at the clock's time, after it): two
    keyed answers and a recorded complaint that was not transcribed."""
    escalation.created_at = clock.now()
    contact_id = escalation.contact_id
    assert contact_id is not None
    attempt = CallAttempt(
        contact_id=contact_id, campaign_id=1, state="completed", due_at=clock.now(),
        dialed_at=clock.now() - timedelta(minutes=5), created_at=clock.now() - timedelta(minutes=6),
    )  # fmt: skip
    from huifang.domain.models import Contact

    contact = session.get(Contact, contact_id)
    assert contact is not None
    attempt.campaign_id = contact.campaign_id
    session.add(attempt)
    session.flush()
    recording = Recording(
        attempt_id=attempt.id, path="/nonexistent/complaint.wav", duration_seconds=3.0,
        created_at=clock.now() - timedelta(minutes=3),
    )  # fmt: skip
    session.add(recording)
    session.flush()
    for question, outcome, minutes in (
        ("attitude", "unsatisfied", 4),
        ("arrival_time", "satisfied", 4),
    ):
        session.add(
            Answer(
                contact_id=contact_id,
                incident_id=escalation.incident_id,
                attempt_id=attempt.id,
                question_id=question,
                dimension=question,
                outcome=outcome,
                value="3",
                mode="dtmf",
                created_at=clock.now() - timedelta(minutes=minutes),
            )  # fmt: skip
        )
    session.flush()
    return attempt


def _kinds(entries: list[TimelineEntry]) -> list[str]:
    return [e.kind.value for e in entries]


def test_an_answer_shows_its_question_text_never_its_id(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session, incident=make_incident(session, unit=staff.station))
    _call_with_answers(session, escalation, clock)
    entries = case_timeline(session, escalation.id, actor=staff.agent, now=clock.now(), tz=TZ)  # type: ignore[arg-type]
    questions = [e.question for e in entries if e.kind is TimelineKind.answer]
    assert questions[0].startswith("请对处警民警的服务态度进行评价")
    assert questions[1].startswith("请对民警到达现场是否及时进行评价")
    assert not any(q in ("attitude", "arrival_time") for q in questions)


def test_a_recording_without_a_transcript_says_it_was_not_transcribed(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session)
    attempt = _call_with_answers(session, escalation, clock)
    [recording] = [
        e
        for e in case_timeline(
            session, escalation.id, actor=staff.inspector, now=clock.now(), tz=TZ
        )  # type: ignore[arg-type]
        if e.kind is TimelineKind.recording
    ]
    assert (recording.transcribed, recording.playable) == (False, True)
    assert recording.links == (f"attempt-{attempt.id}",)


def test_a_recording_plays_for_the_agent_holding_the_claim_only(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session)
    _call_with_answers(session, escalation, clock)
    claim(session, escalation.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]

    def playable(agent) -> bool:  # type: ignore[no-untyped-def]
        entries = case_timeline(session, escalation.id, actor=agent, now=clock.now(), tz=TZ)  # type: ignore[arg-type]
        return next(e for e in entries if e.kind is TimelineKind.recording).playable

    assert playable(staff.agent) is True
    assert playable(staff.agent2) is False


def test_the_case_timeline_holds_every_step_in_order_with_who(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session, incident=make_incident(session, unit=staff.station))
    attempt = _call_with_answers(session, escalation, clock)
    claim(session, escalation.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    comes_back = clock.now() + timedelta(hours=3)
    defer(session, escalation.id, agent=staff.agent, now=clock.now(), retry_after=comes_back)  # type: ignore[arg-type]
    clock.advance(timedelta(hours=3))
    claim(session, escalation.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    call = agent_calls.log_call(
        session, escalation.id, agent=staff.agent, provider="sim", now=clock.now()
    )  # type: ignore[arg-type]
    clock.advance(timedelta(minutes=2))
    agent_calls.end_call(
        session, call.id, agent=staff.agent, outcome=AgentCallOutcome.reached, now=clock.now()
    )  # type: ignore[arg-type]
    resolve(session, escalation.id, agent=staff.agent, outcome=EscalationResolution.ticket,  # type: ignore[arg-type]
            findings="民警态度生硬，属实", now=clock.now())  # fmt: skip
    entries = case_timeline(session, escalation.id, actor=staff.inspector, now=clock.now(), tz=TZ)  # type: ignore[arg-type]
    assert _kinds(entries) == [
        "incident", "call", "answer", "answer", "recording", "escalation", "agent_action",
        "agent_action", "agent_action", "agent_call", "agent_action", "ticket_change", "notice",
    ]  # fmt: skip
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    actions = [e for e in entries if e.kind is TimelineKind.agent_action]
    assert [a.code for a in actions] == [
        "escalation.claim", "escalation.defer", "escalation.claim", "escalation.resolve",
    ]  # fmt: skip
    assert actions[1].until == comes_back
    assert {a.actor for a in actions} == {staff.agent.username}
    assert actions[3].outcome == "ticket" and actions[3].text == "民警态度生硬，属实"
    [logged] = [e for e in entries if e.kind is TimelineKind.agent_call]
    assert (logged.code, logged.outcome) == ("ended", "reached")
    [issued] = [e for e in entries if e.kind is TimelineKind.ticket_change]
    assert (issued.code, issued.links) == ("issue", (f"escalation-{escalation.id}",))
    answer = next(e for e in entries if e.kind is TimelineKind.answer)
    assert answer.links == (f"attempt-{attempt.id}",)


def test_sms_sent_and_received_are_on_the_timeline_with_the_sms_question(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session)
    contact_id = escalation.contact_id
    sent = SmsMessage(contact_id=contact_id, direction="out", phone="+8613800000000",
                      body="您好，请回复1满意…", state="delivered", created_at=clock.now())  # fmt: skip
    clock.advance(timedelta(minutes=10))
    received = SmsMessage(contact_id=contact_id, direction="in", phone="+8613800000000",
                          body="3 民警态度不好", state="received", label="unsatisfied",
                          created_at=clock.now())  # fmt: skip
    session.add_all([sent, received])
    session.flush()
    session.add(
        Answer(
            contact_id=contact_id,
            incident_id=escalation.incident_id,
            sms_id=received.id,  # type: ignore[arg-type]
            question_id="overall",
            dimension="overall",
            outcome="unsatisfied",
            value="3",
            mode="sms",
            created_at=clock.now(),
        )  # fmt: skip
    )
    session.flush()
    entries = case_timeline(session, escalation.id, actor=staff.agent, now=clock.now(), tz=TZ)  # type: ignore[arg-type]
    sms = [e for e in entries if e.kind in (TimelineKind.sms_out, TimelineKind.sms_in)]
    assert [(e.kind.value, e.text) for e in sms] == [
        ("sms_out", "您好，请回复1满意…"), ("sms_in", "3 民警态度不好"),
    ]  # fmt: skip
    [answer] = [e for e in entries if e.kind is TimelineKind.answer]
    assert answer.question and answer.question != "overall"
    assert answer.links == (f"sms-{received.id}",)


def test_the_ticket_timeline_follows_the_unit_and_the_second_callback(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session, incident=make_incident(session, unit=staff.station))
    claim(session, escalation.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    ticket = resolve(session, escalation.id, agent=staff.agent, outcome=EscalationResolution.ticket,  # type: ignore[arg-type]
                     findings="属实", now=clock.now())  # fmt: skip
    assert isinstance(ticket, Ticket) and ticket.id is not None
    acknowledge(session, ticket.id, actor=staff.supervisor, now=clock.now())
    report_rectification(session, ticket.id, actor=staff.supervisor, text="已整改", now=clock.now())
    clock.advance(timedelta(days=1))
    record_second_callback_result(
        session, ticket.id, Satisfaction.satisfied, clock.now(), staff.agent, words="现在满意了"
    )
    entries = ticket_timeline(session, ticket.id, actor=staff.supervisor, now=clock.now(), tz=TZ)
    steps = [e.code for e in entries if e.kind is TimelineKind.ticket_change]
    assert steps == ["issue", "acknowledge", "report", "verify", "close"]
    [round_] = [e for e in entries if e.kind is TimelineKind.second_callback]
    assert (round_.code, round_.outcome, round_.text) == ("satisfied", "satisfied", "现在满意了")
    assert round_.actor == staff.agent.username


def test_a_supervisor_of_another_unit_cannot_read_the_ticket_timeline(
    session: Session, staff, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    escalation = make_escalation(session, incident=make_incident(session, unit=staff.station))
    claim(session, escalation.id, agent=staff.agent, now=clock.now(), lease_minutes=LEASE)  # type: ignore[arg-type]
    ticket = resolve(session, escalation.id, agent=staff.agent, outcome=EscalationResolution.ticket,  # type: ignore[arg-type]
                     findings="属实", now=clock.now())  # fmt: skip
    assert ticket is not None and ticket.id is not None
    with pytest.raises(Forbidden):
        ticket_timeline(session, ticket.id, actor=staff.other_supervisor, now=clock.now(), tz=TZ)
    with pytest.raises(Forbidden):  # the queue's readers only, for the case
        case_timeline(session, escalation.id, actor=staff.supervisor, now=clock.now(), tz=TZ)  # type: ignore[arg-type]
