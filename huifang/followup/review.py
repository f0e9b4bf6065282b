"""The review inbox (待研判): citizens' free-text answers no machine settled, read by agents.

An item opens when the reply reader was not sure of an SMS reply or a spoken answer, or when a
reply is still no answer after the one re-ask. An agent reads it (the message or transcript,
the question it answered, the incident, the unit, the recording) and labels it with one click.

Rules kept here:
- one item per inbound SMS and one per call question (unique keys): a repeated webhook or a
  replayed call opens nothing twice;
- labelling is the guarded move `open → labelled` (`UPDATE … WHERE state = 'open'`): of two
  agents labelling at once, one wins and the other gets Conflict naming who labelled it;
- a label has the effect an automatic reading of it would have had, through the same code
  (`followup.answers`): satisfied and basically satisfied store the answer, unsatisfied
  also opens the escalation, opt-out records the opt-out as an SMS or call opt-out does;
  "not an answer" closes the item with nothing else to do;
- every label is audited (`review.label`) in the same transaction;
- agents and admins label, inspectors read; who may do what is checked here;
- labelled items are corpus rows (text, label, channel, who and when): `reviewed_rows`
  feeds `huifang speech train --include-reviewed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from huifang.domain.audit import record_audit
from huifang.domain.campaigns import opt_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import (
    Answer,
    Contact,
    Incident,
    Recording,
    ReviewItem,
    SmsMessage,
    Unit,
    User,
)
from huifang.domain.states import REVIEW, ReviewEvent, ReviewState
from huifang.domain.users import Role
from huifang.errors import Conflict, Forbidden, NotFound
from huifang.followup.answers import Settled, settle_sms_reply, settle_spoken_answer

#: the reason of an item that was still no answer after the one re-ask
UNCLEAR_AFTER_REASK = "unclear_after_reask"
REVIEW_READERS = frozenset({Role.admin, Role.agent, Role.inspector})
REVIEW_LABELLERS = frozenset({Role.admin, Role.agent})
#: the labels an agent may give, in the order the console shows them
REVIEW_LABELS = (
    Satisfaction.satisfied,
    Satisfaction.basically_satisfied,
    Satisfaction.unsatisfied,
    Satisfaction.opt_out,
    Satisfaction.unclear,
)


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """An inbox row: the item with its incident and unit."""

    item: ReviewItem
    incident: Incident
    unit: Unit


@dataclass(frozen=True, slots=True)
class ReviewDetail:
    item: ReviewItem
    incident: Incident
    unit: Unit
    recording: Recording | None
    #: the contact's SMS conversation up to this reply (the survey SMS, a re-ask, replies)
    conversation: Sequence[SmsMessage]
    labelled_by: User | None


@dataclass(frozen=True, slots=True)
class Labelled:
    item: ReviewItem
    answer_id: int | None
    escalation_id: int | None
    opted_out: bool


@dataclass(frozen=True, slots=True)
class ReviewedRow:
    """A labelled item as a corpus row, with who labelled it and when."""

    text: str
    label: Satisfaction
    channel: str
    language: str
    labelled_by: str
    labelled_at: datetime


def _require(actor: User, roles: frozenset[Role], doing: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"{doing}: needs role {', '.join(sorted(roles))}")


# --- opening items -----------------------------------------------------------------------


def open_sms_review(
    session: Session,
    *,
    contact: Contact,
    reply: SmsMessage,
    question: str,
    language: str,
    reason: str,
    reader_label: str,
    reader_confidence: float,
    reader_version: str,
    now: datetime,
) -> ReviewItem:
    """The item for an inbound SMS reply (the one already open for it, if any)."""
    assert contact.id is not None and reply.id is not None
    existing = session.exec(select(ReviewItem).where(ReviewItem.sms_id == reply.id)).first()
    if existing is not None:
        return existing
    item = ReviewItem(
        contact_id=contact.id,
        incident_id=contact.incident_id,
        channel="sms",
        sms_id=reply.id,
        language=language,
        question=question,
        text=reply.body,
        reason=reason,
        reader_label=reader_label,
        reader_confidence=reader_confidence,
        reader_version=reader_version,
        created_at=now,
    )
    session.add(item)
    session.flush()
    return item


def open_voice_review(
    session: Session,
    *,
    contact_id: int,
    incident_id: int,
    attempt_id: int,
    question_id: str,
    question: str,
    language: str,
    text: str,
    recording_id: int | None,
    reason: str,
    reader_label: str,
    reader_confidence: float,
    reader_version: str,
    now: datetime,
) -> ReviewItem | None:
    """The item for a call's spoken answer; None when that question has one already."""
    item = ReviewItem(
        contact_id=contact_id,
        incident_id=incident_id,
        channel="voice",
        attempt_id=attempt_id,
        question_id=question_id,
        recording_id=recording_id,
        language=language,
        question=question,
        text=text,
        reason=reason,
        reader_label=reader_label,
        reader_confidence=reader_confidence,
        reader_version=reader_version,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        return None  # the same call question, replayed
    return item


# --- reading the inbox -------------------------------------------------------------------


def inbox_count(session: Session) -> int:
    """Items waiting for an agent (the dashboard's and `/metrics`' figure)."""
    count = session.exec(
        select(func.count()).select_from(ReviewItem).where(ReviewItem.state == ReviewState.open)
    ).one()
    return int(count)


def list_reviews(
    session: Session,
    *,
    actor: User,
    state: ReviewState = ReviewState.open,
    limit: int = 100,
    offset: int = 0,
) -> list[ReviewEntry]:
    """Items in `state`, oldest first when open (first come, first read), newest first after."""
    _require(actor, REVIEW_READERS, "reading the review inbox")
    order = (
        (col(ReviewItem.created_at), col(ReviewItem.id))
        if state is ReviewState.open
        else (col(ReviewItem.labelled_at).desc(), col(ReviewItem.id).desc())
    )
    rows = session.exec(
        select(ReviewItem, Incident, Unit)
        .join(Incident, col(Incident.id) == col(ReviewItem.incident_id))
        .join(Unit, col(Unit.id) == col(Incident.unit_id))
        .where(ReviewItem.state == state)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    ).all()
    return [ReviewEntry(item, incident, unit) for item, incident, unit in rows]


def review_detail(session: Session, item_id: int, *, actor: User) -> ReviewDetail:
    _require(actor, REVIEW_READERS, "reading a review item")
    item = _get(session, item_id)
    incident = session.get(Incident, item.incident_id)
    assert incident is not None  # a foreign key
    unit = session.get(Unit, incident.unit_id)
    assert unit is not None  # a foreign key
    recording = session.get(Recording, item.recording_id) if item.recording_id else None
    conversation: Sequence[SmsMessage] = []
    if item.sms_id is not None:
        conversation = session.exec(
            select(SmsMessage)
            .where(SmsMessage.contact_id == item.contact_id, col(SmsMessage.id) <= item.sms_id)
            .order_by(col(SmsMessage.id))
        ).all()
    labelled_by = session.get(User, item.labelled_by) if item.labelled_by else None
    return ReviewDetail(item, incident, unit, recording, conversation, labelled_by)


def recording_under_review(session: Session, recording_id: int) -> bool:
    """True when an open review item rests on this recording (agents may play it)."""
    found = session.exec(
        select(ReviewItem.id).where(
            ReviewItem.recording_id == recording_id, ReviewItem.state == ReviewState.open
        )
    ).first()
    return found is not None


def _get(session: Session, item_id: int) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"review item {item_id} does not exist")
    return item


# --- labelling ---------------------------------------------------------------------------


def label_review(
    session: Session,
    item_id: int,
    *,
    agent: User,
    label: Satisfaction,
    now: datetime,
    sla_hours: int,
) -> Labelled:
    """Label the item once and apply what the label means; Conflict if labelled already."""
    _require(agent, REVIEW_LABELLERS, "labelling a review item")
    label = Satisfaction(label)
    moved = session.exec(
        update(ReviewItem)
        .where(col(ReviewItem.id) == item_id, col(ReviewItem.state) == ReviewState.open)
        .values(
            state=REVIEW.advance(ReviewState.open, ReviewEvent.label).value,
            label=label.value,
            labelled_by=agent.id,
            labelled_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    item = _get(session, item_id)
    session.refresh(item)
    if moved != 1:
        by = session.get(User, item.labelled_by) if item.labelled_by else None
        who = by.display_name or by.username if by else "someone"
        raise Conflict(f"review item {item_id} was labelled {item.label} by {who} already")
    contact = session.get(Contact, item.contact_id)
    assert contact is not None  # a foreign key
    settled, opted_out = _apply(session, item, contact, label, now, sla_hours)
    if settled.escalation_id is not None:
        session.exec(
            update(ReviewItem)
            .where(col(ReviewItem.id) == item_id)
            .values(escalation_id=settled.escalation_id)
        )
        session.refresh(item)
    record_audit(
        session, at=now, actor=agent, action="review.label", target_type="review_item",
        target_id=item_id,
        detail={"label": label.value, "reader_label": item.reader_label,
                "escalation_id": settled.escalation_id},
    )  # fmt: skip
    return Labelled(item, settled.answer_id, settled.escalation_id, opted_out)


def _apply(
    session: Session,
    item: ReviewItem,
    contact: Contact,
    label: Satisfaction,
    now: datetime,
    sla_hours: int,
) -> tuple[Settled, bool]:
    version = f"review:{item.id}"
    if label is Satisfaction.unclear:
        return Settled(None, None), False
    if label is Satisfaction.opt_out:
        source = "sms" if item.channel == "sms" else "call"
        opt_out(session, phone=contact.phone, source=source, note=item.text, now=now)
        if item.sms_id is not None:
            _relabel_reply(session, item.sms_id, label)
        return Settled(None, None), True
    if item.sms_id is not None:
        reply = session.get(SmsMessage, item.sms_id)
        assert reply is not None  # a foreign key
        _relabel_reply(session, item.sms_id, label)
        settled = settle_sms_reply(
            session, contact=contact, reply=reply, label=label, confidence=1.0,
            reader_version=version, language=item.language, now=now, sla_hours=sla_hours,
        )  # fmt: skip
        return settled, False
    assert item.attempt_id is not None and contact.id is not None  # a voice item names its call
    settled = settle_spoken_answer(
        session, contact_id=contact.id, incident_id=item.incident_id,
        attempt_id=item.attempt_id, question_id=item.question_id,
        dimension=_dimension(session, item), text=item.text, label=label,
        reader_version=version, language=item.language, now=now, sla_hours=sla_hours,
    )  # fmt: skip
    return settled, False


def _relabel_reply(session: Session, sms_id: int, label: Satisfaction) -> None:
    session.exec(update(SmsMessage).where(col(SmsMessage.id) == sms_id).values(label=label.value))


def _dimension(session: Session, item: ReviewItem) -> str:
    dimension = session.exec(
        select(Answer.dimension).where(
            Answer.attempt_id == item.attempt_id, Answer.question_id == item.question_id
        )
    ).first()
    return dimension or ""


# --- the learning loop -------------------------------------------------------------------


def reviewed_rows(session: Session) -> list[ReviewedRow]:
    """Every labelled item as a corpus row, oldest label first."""
    rows = session.exec(
        select(ReviewItem, User)
        .join(User, col(User.id) == col(ReviewItem.labelled_by))
        .where(ReviewItem.state == ReviewState.labelled)
        .order_by(col(ReviewItem.labelled_at), col(ReviewItem.id))
    ).all()
    return [
        ReviewedRow(
            item.text,
            Satisfaction(item.label),
            "sms" if item.channel == "sms" else "speech",
            item.language,
            user.username,
            item.labelled_at,
        )
        for item, user in rows
        if item.label is not None and item.labelled_at is not None
    ]
