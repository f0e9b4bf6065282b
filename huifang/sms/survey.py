"""The SMS survey: send a contact the script's SMS, read the citizen's reply, track delivery.

Rules kept here:
- a contact gets its survey SMS at most once: `contacts.sms_sent_at` is claimed with a
  guarded `UPDATE … WHERE sms_sent_at IS NULL` before the gateway is called, so two
  workers (or a retried job) cannot both send; a retryable refusal releases the claim;
- every state write is a guarded transition from `huifang.domain.states` (never backwards:
  a late `sent` report after `delivered` changes nothing);
- an inbound message is stored once (unique gateway id): a repeated webhook does nothing;
- the first usable reply is the contact's answer; a later reply is kept as a message, and
  a later *unsatisfied* one still reaches the escalation queue (a complaint is never lost);
- an opt-out stops every channel of every campaign for that phone and is confirmed once;
- an unclear reply is asked again once, never more (no SMS ping-pong);
- in an SMS-then-voice campaign the citizen gets `sms_fallback_hours` to answer the survey
  SMS before the fallback call: when the survey SMS is sent (accepted by the gateway), the
  contact's still-queued survey call is pushed to sent + N hours if it was due earlier,
  in the same transaction that records the send (never earlier, never a live call).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.domain.answers import count_survey
from huifang.domain.campaigns import is_opted_out, opt_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Campaign,
    Contact,
    Incident,
    ScriptVersion,
    SmsMessage,
    Unit,
)
from huifang.domain.states import (
    CONTACT,
    SMS,
    AttemptState,
    ContactEvent,
    SmsEvent,
    SmsState,
)
from huifang.errors import InvalidPhoneNumber, NotFound
from huifang.phones import normalize_phone
from huifang.settings import Settings
from huifang.sms.base import OutboundSms, SmsGateway, SmsSendError

#: the question id an SMS reply answers (one question: the overall verdict)
SMS_QUESTION_ID = "sms.overall"
#: the reply the survey SMS names for unsubscribing
SMS_OPT_OUT_KEY = "0"
_REPLY_PUNCTUATION = " \t\r\n.。!！,，、~～"
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

_REPLIES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "reference": "（编号{reference}）",
        "opt_out": "【公安回访】您已退订回访短信和电话，我们将不再就此联系您。",
        "reask": "【公安回访】抱歉，未能识别您的回复。",
    },
    "en-US": {
        "reference": " (ref. {reference})",
        "opt_out": "You have opted out of survey messages and calls; we will not contact you again about this.",
        "reask": "Sorry, we could not understand your reply. ",
    },
}

#: the delivery words we know → our events; the early ones (queued, accepted, sending) move
#: nothing, nor does a word not listed (the HTTP gateway's webhook answers that one 204)
DELIVERY_EVENTS: dict[str, tuple[SmsEvent, ...]] = {
    "queued": (),
    "accepted": (),
    "sending": (),
    "sent": (SmsEvent.send,),
    "delivered": (SmsEvent.send, SmsEvent.deliver),
    "undelivered": (SmsEvent.fail,),
    "failed": (SmsEvent.fail,),
}


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What an inbound SMS led to. `reply_sms_id` names a queued message the caller sends."""

    message_id: int | None
    label: Satisfaction | None
    duplicate: bool = False
    contact_id: int | None = None
    answer_id: int | None = None
    escalation_id: int | None = None
    opted_out: bool = False
    reply_sms_id: int | None = None
    reply_text: str = ""


# --- outbound ----------------------------------------------------------------------------


async def send_survey_sms(
    runtime: Runtime, gateway: SmsGateway, contact_id: int
) -> SmsMessage | None:
    """Send the contact its survey SMS once. None when the phone opted out.

    A second call for the same contact returns the message already sent, without sending.
    """
    queued, claimed = await asyncio.to_thread(_queue_survey_sms, runtime, gateway.name, contact_id)
    if queued is None or not claimed:
        return queued  # opted out, or another sender owns it (sent, or being sent)
    assert queued.id is not None
    return await send_queued_sms(runtime, gateway, queued.id, release_claim_on_retryable=True)


def _queue_survey_sms(
    runtime: Runtime, gateway_name: str, contact_id: int
) -> tuple[SmsMessage | None, bool]:
    """Claim the contact's survey SMS and queue it (claimed); or the message of whoever
    claimed it before; or None for an opted-out phone."""
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(f"contact {contact_id} does not exist")
        if is_opted_out(session, contact.phone):
            return None, False
        claimed = session.exec(
            update(Contact)
            .where(col(Contact.id) == contact_id, col(Contact.sms_sent_at).is_(None))
            .values(sms_sent_at=now, updated_at=now)
        ).rowcount
        if not claimed:
            return _survey_message(session, contact_id), False
        message = SmsMessage(
            contact_id=contact_id,
            direction="out",
            phone=contact.phone,
            body=survey_text(session, contact, runtime.settings),
            provider=gateway_name,
            state=SmsState.queued,
            created_at=now,
        )
        session.add(message)
        _advance_contact(session, contact_id, ContactEvent.contact, now)
        session.flush()
        return message, True


async def send_queued_sms(
    runtime: Runtime, gateway: SmsGateway, sms_id: int, *, release_claim_on_retryable: bool = False
) -> SmsMessage:
    """Hand a queued outbound message to the gateway and record the outcome (sent / failed).

    A message no longer queued is returned as it is: someone else sent it already.
    """
    message = await asyncio.to_thread(_load_sms, runtime, sms_id)
    if message.state != SmsState.queued:
        return message
    outbound = OutboundSms(to=message.phone, body=message.body, reference=str(sms_id))
    try:
        provider_id = await gateway.send(outbound)
    except SmsSendError as exc:
        release = exc.retryable and release_claim_on_retryable
        return await asyncio.to_thread(_record_refusal, runtime, message, release)
    return await asyncio.to_thread(_record_sent, runtime, sms_id, provider_id)


def _load_sms(runtime: Runtime, sms_id: int) -> SmsMessage:
    with Session(runtime.engine, expire_on_commit=False) as session:
        message: SmsMessage = _required(session, SmsMessage, sms_id)
        return message


def _record_refusal(runtime: Runtime, message: SmsMessage, release_claim: bool) -> SmsMessage:
    """The message failed; a retryable refusal of a survey SMS frees its contact for a retry."""
    assert message.id is not None
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        _advance_sms(session, message.id, SmsEvent.fail, now)
        if release_claim and message.contact_id is not None:
            session.exec(
                update(Contact)
                .where(col(Contact.id) == message.contact_id)
                .values(sms_sent_at=None, updated_at=now)
            )
    return _load_sms(runtime, message.id)


def _record_sent(runtime: Runtime, sms_id: int, provider_message_id: str) -> SmsMessage:
    with session_scope(runtime.engine) as session:
        now = runtime.clock.now()
        _advance_sms(session, sms_id, SmsEvent.send, now, provider_message_id=provider_message_id)
    return _load_sms(runtime, sms_id)


def survey_text(session: Session, contact: Contact, settings: Settings) -> str:
    """The contact's survey SMS, with the incident reference."""
    from huifang.domain.scripts import script_variables
    from huifang.ivr.script import parse_script, render_sms

    version = _sms_script_version(session, contact)
    incident = _required(session, Incident, contact.incident_id)
    unit = _required(session, Unit, incident.unit_id)
    script = parse_script(version.source_yaml)
    variables = script_variables(
        incident, unit_name=unit.name, language=script.language, tz=settings.tz
    )
    body = render_sms(script, variables)
    if "{reference}" not in (script.sms_text or ""):
        # the citizen quotes the reference when they call the hotline about this survey
        body += _reply(script.language, "reference").format(reference=incident.external_id)
    return body


# --- inbound -----------------------------------------------------------------------------


def handle_inbound_sms(
    session: Session,
    *,
    phone: str,
    body: str,
    provider_message_id: str,
    now: datetime,
    settings: Settings,
) -> InboundOutcome:
    """Store and act on a citizen's reply, once per gateway message id.

    Runs in the caller's transaction; the caller commits, then sends `reply_sms_id`.
    """
    from huifang.followup.escalations import escalate

    if _inbound_exists(session, provider_message_id):
        return InboundOutcome(message_id=None, label=None, duplicate=True)
    phone = _normalized_or_raw(phone, settings.phone_region)
    contact = _latest_surveyed_contact(session, phone)
    language = _sms_script_version(session, contact).language if contact else settings.language
    label, confidence = classify_reply(body, language)
    inbound = SmsMessage(
        contact_id=contact.id if contact else None,
        direction="in",
        phone=phone,
        body=body,
        provider_message_id=provider_message_id,
        state=SmsState.received,
        label=label,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(inbound)
    except IntegrityError:
        # the same webhook, delivered twice at once: the other request stored it
        return InboundOutcome(message_id=None, label=None, duplicate=True)

    if label is Satisfaction.opt_out:
        confirmation = _queue_reply(session, phone, contact, _reply(language, "opt_out"), now)
        opt_out(session, phone=phone, source="sms", note=body, now=now)
        return InboundOutcome(
            message_id=inbound.id,
            label=label,
            contact_id=contact.id if contact else None,
            opted_out=True,
            reply_sms_id=confirmation.id,
            reply_text=confirmation.body,
        )
    if contact is None or contact.id is None:
        return InboundOutcome(message_id=inbound.id, label=label)
    if label is Satisfaction.unclear:
        reply = _reask(session, contact, language, now)
        return InboundOutcome(
            message_id=inbound.id,
            label=label,
            contact_id=contact.id,
            reply_sms_id=reply.id if reply else None,
            reply_text=reply.body if reply else "",
        )

    categories = _complaint_categories(body, language) if label is Satisfaction.unsatisfied else []
    answer = _store_answer(session, contact, inbound, label, confidence, categories, now)
    escalation_id = None
    if label is Satisfaction.unsatisfied:
        escalation = escalate(
            session,
            incident_id=contact.incident_id,
            origin="sms",
            now=now,
            sla_hours=settings.escalation_sla_hours,
            contact_id=contact.id,
            summary=body,
            categories=categories,
        )
        escalation_id = escalation.id
    return InboundOutcome(
        message_id=inbound.id,
        label=label,
        contact_id=contact.id,
        answer_id=answer.id if answer else None,
        escalation_id=escalation_id,
    )


def classify_reply(body: str, language: str) -> tuple[Satisfaction, float]:
    """The label of an SMS reply, and the classifier's confidence in it.

    The survey SMS invites "reply 0 to unsubscribe"; the classifier's digit keys are the
    rating keys shared with voice, so the SMS-only key is honoured here.
    """
    from huifang.speech.classify import classify

    if body.strip(_REPLY_PUNCTUATION).translate(_FULL_WIDTH_DIGITS) == SMS_OPT_OUT_KEY:
        return Satisfaction.opt_out, 1.0
    classification = classify(body, language)
    return Satisfaction(classification.label), classification.confidence


def handle_delivery_status(
    session: Session,
    *,
    provider_message_id: str,
    status: str,
    now: datetime,
    sms_id: int | None = None,
) -> bool:
    """Apply a gateway's delivery report; True when it changed the message.

    `sms_id` (our id, echoed in the callback URL) finds a message whose report arrived
    before the gateway's id was stored.
    """
    message = session.exec(
        select(SmsMessage).where(SmsMessage.provider_message_id == provider_message_id)
    ).first()
    if message is None and sms_id is not None:
        message = session.get(SmsMessage, sms_id)
    if message is None or message.id is None or message.direction != "out":
        return False
    changed = False
    for event in DELIVERY_EVENTS.get(status.lower(), ()):
        changed |= _advance_sms(
            session, message.id, event, now, provider_message_id=provider_message_id
        )
    return changed


# --- helpers -----------------------------------------------------------------------------


def _advance_sms(
    session: Session,
    sms_id: int,
    event: SmsEvent,
    now: datetime,
    *,
    provider_message_id: str | None = None,
) -> bool:
    values: dict[str, Any] = {"updated_at": now}
    if provider_message_id:
        values["provider_message_id"] = provider_message_id
    moved = 0
    for source in SMS.sources(event):
        moved += session.exec(
            update(SmsMessage)
            .where(col(SmsMessage.id) == sms_id, col(SmsMessage.state) == source)
            .values(state=SMS.advance(source, event), **values)
        ).rowcount
    if moved and event == SmsEvent.send:
        _give_time_to_reply(session, sms_id, sent_at=now)
    return bool(moved)


def _give_time_to_reply(session: Session, sms_id: int, *, sent_at: datetime) -> int:
    """Push the queued fallback call of a just-sent survey SMS's contact to `sent_at` +
    `sms_fallback_hours` when it was due earlier; how many attempts moved (0 or 1).

    Only the contact's survey SMS counts (not a re-ask or a confirmation), only in an
    SMS-then-voice campaign, and only a survey attempt still queued: a call being dialed
    or ended is left alone, and a reply or opt-out still cancels the queued one.
    """
    found = session.exec(
        select(SmsMessage.contact_id, Contact.campaign_id, Campaign.sms_fallback_hours)
        .join(Contact, col(Contact.id) == col(SmsMessage.contact_id))
        .join(Campaign, col(Campaign.id) == col(Contact.campaign_id))
        .where(col(SmsMessage.id) == sms_id, col(Campaign.channels) == "sms_then_voice")
    ).first()
    if found is None:
        return 0
    contact_id, campaign_id, fallback_hours = found
    assert contact_id is not None  # joined to its contact
    survey = _survey_message(session, contact_id)
    if survey is None or survey.id != sms_id:
        return 0
    due = sent_at + timedelta(hours=fallback_hours)
    return int(
        session.exec(
            update(CallAttempt)
            .where(
                col(CallAttempt.contact_id) == contact_id,
                col(CallAttempt.campaign_id) == campaign_id,
                col(CallAttempt.purpose) == "survey",
                col(CallAttempt.state) == AttemptState.queued,
                col(CallAttempt.due_at) < due,
            )
            .values(due_at=due)
        ).rowcount
    )


def _advance_contact(session: Session, contact_id: int, event: ContactEvent, now: datetime) -> bool:
    moved = 0
    for source in CONTACT.sources(event):
        moved += session.exec(
            update(Contact)
            .where(col(Contact.id) == contact_id, col(Contact.state) == source)
            .values(state=CONTACT.advance(source, event), updated_at=now)
        ).rowcount
    return bool(moved)


def _store_answer(
    session: Session,
    contact: Contact,
    inbound: SmsMessage,
    label: Satisfaction,
    confidence: float,
    categories: list[str],
    now: datetime,
) -> Answer | None:
    """The contact's SMS answer, keyed on its survey SMS: only the first reply is stored."""
    assert contact.id is not None
    survey = _survey_message(session, contact.id)
    if survey is None or survey.id is None:
        return None
    answer = Answer(
        contact_id=contact.id,
        incident_id=contact.incident_id,
        sms_id=survey.id,
        question_id=SMS_QUESTION_ID,
        dimension="overall",
        outcome=label,
        value=inbound.body,
        mode="sms",
        confidence=confidence,
        categories=categories,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(answer)
    except IntegrityError:
        return None  # answered already by an earlier reply
    count_survey(session, now=now, sms_id=survey.id)
    _advance_contact(session, contact.id, ContactEvent.answer, now)
    session.exec(update(Contact).where(col(Contact.id) == contact.id).values(outcome=label))
    return answer


def _reask(session: Session, contact: Contact, language: str, now: datetime) -> SmsMessage | None:
    """Ask again after the contact's first unclear reply only."""
    unclear_replies = session.exec(
        select(SmsMessage.id).where(
            SmsMessage.contact_id == contact.id,
            SmsMessage.direction == "in",
            SmsMessage.label == Satisfaction.unclear,
        )
    ).all()
    answered = session.exec(
        select(Answer.id).where(Answer.contact_id == contact.id, col(Answer.sms_id).is_not(None))
    ).first()
    assert contact.id is not None
    survey = _survey_message(session, contact.id)
    if len(unclear_replies) > 1 or answered is not None or survey is None:
        return None
    return _queue_reply(
        session, contact.phone, contact, _reply(language, "reask") + survey.body, now
    )


def _queue_reply(
    session: Session, phone: str, contact: Contact | None, body: str, now: datetime
) -> SmsMessage:
    reply = SmsMessage(
        contact_id=contact.id if contact else None,
        direction="out",
        phone=phone,
        body=body,
        state=SmsState.queued,
        created_at=now,
    )
    session.add(reply)
    session.flush()
    return reply


def _complaint_categories(body: str, language: str) -> list[str]:
    from huifang.speech.classify import tag_complaint

    return [str(tag.category) for tag in tag_complaint(body, language)]


def _survey_message(session: Session, contact_id: int) -> SmsMessage | None:
    """The contact's survey SMS: its first outbound message that did not fail, if any."""
    return session.exec(
        select(SmsMessage)
        .where(SmsMessage.contact_id == contact_id, SmsMessage.direction == "out")
        .order_by(col(SmsMessage.state) == SmsState.failed, col(SmsMessage.id))
    ).first()


def _latest_surveyed_contact(session: Session, phone: str) -> Contact | None:
    return session.exec(
        select(Contact)
        .where(Contact.phone == phone, col(Contact.sms_sent_at).is_not(None))
        .order_by(col(Contact.sms_sent_at).desc(), col(Contact.id).desc())
    ).first()


def _sms_script_version(session: Session, contact: Contact) -> ScriptVersion:
    """The script the contact's SMS is written from: the campaign's SMS script, else its
    call script."""
    campaign = _required(session, Campaign, contact.campaign_id)
    version: ScriptVersion = _required(
        session, ScriptVersion, campaign.sms_script_version_id or campaign.script_version_id
    )
    return version


def _inbound_exists(session: Session, provider_message_id: str) -> bool:
    found = session.exec(
        select(SmsMessage.id).where(SmsMessage.provider_message_id == provider_message_id)
    ).first()
    return found is not None


def _normalized_or_raw(phone: str, region: str) -> str:
    try:
        return normalize_phone(phone, region)
    except InvalidPhoneNumber:
        return phone.strip()  # a short code or alphanumeric sender: kept as the gateway gave it


def _reply(language: str, key: str) -> str:
    return _REPLIES.get(language, _REPLIES["en-US"])[key]


def _required(session: Session, model: Any, row_id: int | None) -> Any:
    row = session.get(model, row_id) if row_id is not None else None
    if row is None:
        raise NotFound(f"{model.__tablename__} {row_id} does not exist")
    return row
