"""Settling a citizen's answer: store it, and open the escalation when it is unsatisfied.

The one path for an answer read by the machine (an SMS reply the reader labelled) and for an
answer an agent labelled in the review inbox: both store the same answer row and open the
escalation through `escalations.escalate` with the same summary and categories.

Rules kept here:
- an SMS answer is keyed on the contact's survey SMS: the first settled reply is the
  contact's answer (counted by the statistics as the survey's, `domain.answers`), a later one
  is not stored again (the unique key refuses it), but a later unsatisfied one still opens
  the escalation (a complaint is never lost);
- a spoken answer left unclear by the call is settled by updating that answer row, guarded
  on its still being unclear; whether the statistics count it is the call's to decide (a
  completed call counts its answers, one cut short does not);
- contact moves are guarded transitions of the contact lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from huifang.domain.answers import count_survey
from huifang.domain.enums import Satisfaction
from huifang.domain.models import Answer, Contact, SmsMessage
from huifang.domain.states import CONTACT, ContactEvent, SmsState
from huifang.followup.escalations import escalate
from huifang.speech.classify import tag_complaint

#: the question id an SMS reply answers (one question: the overall verdict)
SMS_QUESTION_ID = "sms.overall"
#: the aspects a spoken answer may be about that are also complaint categories
_ASPECTS = ("attitude", "arrival_time", "handling")


@dataclass(frozen=True, slots=True)
class Settled:
    answer_id: int | None
    escalation_id: int | None


def complaint_categories(text: str, language: str) -> list[str]:
    return list(dict.fromkeys(str(tag.category) for tag in tag_complaint(text, language)))


def settle_sms_reply(
    session: Session,
    *,
    contact: Contact,
    reply: SmsMessage,
    label: Satisfaction,
    confidence: float,
    reader_version: str,
    language: str,
    now: datetime,
    sla_hours: int,
) -> Settled:
    """Store a graded SMS reply as the contact's answer; escalate an unsatisfied one."""
    assert contact.id is not None
    unsatisfied = label is Satisfaction.unsatisfied
    categories = complaint_categories(reply.body, language) if unsatisfied else []
    answer = _store_sms_answer(
        session, contact, reply, label, confidence, categories, reader_version, now
    )
    escalation_id = None
    if unsatisfied:
        escalation = escalate(
            session,
            incident_id=contact.incident_id,
            origin="sms",
            now=now,
            sla_hours=sla_hours,
            contact_id=contact.id,
            summary=reply.body,
            categories=categories,
        )
        escalation_id = escalation.id
    return Settled(answer.id if answer else None, escalation_id)


def settle_spoken_answer(
    session: Session,
    *,
    contact_id: int,
    incident_id: int,
    attempt_id: int,
    question_id: str,
    dimension: str,
    text: str,
    label: Satisfaction,
    reader_version: str,
    language: str,
    now: datetime,
    sla_hours: int,
) -> Settled:
    """Give a call's unclear spoken answer its label; escalate an unsatisfied one."""
    session.exec(
        update(Answer)
        .where(
            col(Answer.attempt_id) == attempt_id,
            col(Answer.question_id) == question_id,
            col(Answer.outcome) == Satisfaction.unclear.value,
        )
        .values(outcome=label.value, reader_version=reader_version, confidence=1.0)
    )
    answer_id = session.exec(
        select(Answer.id).where(Answer.attempt_id == attempt_id, Answer.question_id == question_id)
    ).first()
    if label is not Satisfaction.unsatisfied:
        return Settled(answer_id, None)
    categories = complaint_categories(text, language)
    categories += [dimension] if dimension in _ASPECTS and dimension not in categories else []
    escalation = escalate(
        session,
        incident_id=incident_id,
        origin="voice",
        now=now,
        sla_hours=sla_hours,
        contact_id=contact_id,
        attempt_id=attempt_id,
        summary=text,
        categories=categories,
    )
    return Settled(answer_id, escalation.id)


def survey_message(session: Session, contact_id: int) -> SmsMessage | None:
    """The contact's survey SMS: its first outbound message that did not fail, if any."""
    return session.exec(
        select(SmsMessage)
        .where(SmsMessage.contact_id == contact_id, SmsMessage.direction == "out")
        .order_by(col(SmsMessage.state) == SmsState.failed, col(SmsMessage.id))
    ).first()


def advance_contact(session: Session, contact_id: int, event: ContactEvent, now: datetime) -> bool:
    moved = 0
    for source in CONTACT.sources(event):
        moved += session.exec(
            update(Contact)
            .where(col(Contact.id) == contact_id, col(Contact.state) == source)
            .values(state=CONTACT.advance(source, event), updated_at=now)
        ).rowcount
    return bool(moved)


def _store_sms_answer(
    session: Session,
    contact: Contact,
    reply: SmsMessage,
    label: Satisfaction,
    confidence: float,
    categories: list[str],
    reader_version: str,
    now: datetime,
) -> Answer | None:
    """The contact's SMS answer, keyed on its survey SMS: only the first reply is stored."""
    assert contact.id is not None
    survey = survey_message(session, contact.id)
    if survey is None or survey.id is None:
        return None
    answer = Answer(
        contact_id=contact.id,
        incident_id=contact.incident_id,
        sms_id=survey.id,
        question_id=SMS_QUESTION_ID,
        dimension="overall",
        outcome=label,
        value=reply.body,
        mode="sms",
        confidence=confidence,
        categories=categories,
        reader_version=reader_version,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(answer)
    except IntegrityError:
        return None  # answered already by an earlier reply
    count_survey(session, now=now, sms_id=survey.id)
    advance_contact(session, contact.id, ContactEvent.answer, now)
    session.exec(update(Contact).where(col(Contact.id) == contact.id).values(outcome=label))
    return answer
