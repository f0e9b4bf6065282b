"""Notices to a unit about its tickets — issued, due within a day, overdue, an extension
approved or refused — in the console (a list and a badge) and, when the unit has a duty
phone, by SMS through the deployment's gateway.

Rules kept here:
- one notice per ticket, kind and deadline (a unique key, written under a savepoint): writing
  it again changes nothing, so every worker's sweep may run `notify_deadlines` every minute;
  an extension moves the deadline and so arms the deadline notices again;
- the SMS is queued (`sms_messages`, no contact) in the notice's own transaction: it leaves
  only if the notice was stored; the worker hands queued notices to the gateway after commit;
- a notice is read once: the first reader and the moment are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from huifang.domain.models import Notification, SmsMessage, Ticket, Unit, User
from huifang.domain.states import OPEN_TICKET_STATES
from huifang.errors import NotFound

#: a deadline this close brings the "due soon" notice
DUE_SOON = timedelta(hours=24)
KINDS = ("issued", "due_soon", "overdue", "extension_approved", "extension_refused")
#: the SMS to the duty phone, per language: {number} of the ticket, {deadline} local
SMS_TEXTS = {
    "zh-CN": {
        "issued": "【回访督办】督办单{number}已下发，请于{deadline}前整改并反馈。",
        "due_soon": "【回访督办】督办单{number}将于{deadline}到期，请及时整改反馈。",
        "overdue": "【回访督办】督办单{number}已于{deadline}超期，已报上级单位。",
        "extension_approved": "【回访督办】督办单{number}延期已批准，新期限{deadline}。",
        "extension_refused": "【回访督办】督办单{number}延期未获批准，期限仍为{deadline}。",
    },
    "en-US": {
        "issued": "Supervision ticket {number} issued: rectify and report by {deadline}.",
        "due_soon": "Supervision ticket {number} is due at {deadline}.",
        "overdue": "Supervision ticket {number} is overdue since {deadline}; escalated.",
        "extension_approved": "Ticket {number}: extension approved, new deadline {deadline}.",
        "extension_refused": "Ticket {number}: extension refused, deadline still {deadline}.",
    },
}


def notify(
    session: Session, ticket: Ticket, kind: str, *, now: datetime, tz: ZoneInfo,
    language: str = "zh-CN",
) -> Notification | None:  # fmt: skip
    """The unit's notice of `kind` about `ticket` at its current deadline; None when it was
    written before."""
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    assert ticket.id is not None  # a stored row
    unit = session.get(Unit, ticket.unit_id)
    notice = Notification(
        unit_id=ticket.unit_id, ticket_id=ticket.id, kind=kind, deadline_at=ticket.deadline_at,
        created_at=now, sms_to=unit.duty_phone if unit else "",
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(notice)
    except IntegrityError:
        return None  # written before, here or by another worker's sweep
    if notice.sms_to:
        texts = SMS_TEXTS.get(language, SMS_TEXTS["zh-CN"])
        deadline = ticket.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        session.add(
            SmsMessage(
                direction="out", phone=notice.sms_to, created_at=now,
                body=texts[kind].format(number=ticket.number, deadline=deadline),
            )
        )  # fmt: skip
    return notice


def notify_deadlines(
    session: Session, *, now: datetime, tz: ZoneInfo, language: str = "zh-CN"
) -> list[Notification]:
    """The "due soon" and "overdue" notices of open tickets not sent yet for their deadline."""
    written: list[Notification] = []
    for kind, due in (("due_soon", now + DUE_SOON), ("overdue", now)):
        already = exists().where(
            col(Notification.ticket_id) == col(Ticket.id), col(Notification.kind) == kind,
            col(Notification.deadline_at) == col(Ticket.deadline_at),
        )  # fmt: skip
        query = (
            select(Ticket)
            .where(col(Ticket.state).in_([s.value for s in OPEN_TICKET_STATES]))
            .where(col(Ticket.deadline_at) <= due)
            .where(~already)
            .order_by(col(Ticket.id))
        )
        if kind == "due_soon":
            query = query.where(col(Ticket.deadline_at) > now)
        for ticket in session.execute(query).scalars().all():
            notice = notify(session, ticket, kind, now=now, tz=tz, language=language)
            if notice is not None:
                written.append(notice)
    return written


@dataclass(frozen=True, slots=True)
class NoticeRow:
    notice: Notification
    ticket_number: str
    unit_name: str


def notices_for(
    session: Session, unit_ids: Sequence[int] | None, *, limit: int = 100
) -> list[NoticeRow]:
    """The notices of these units (None: every unit), unread first, newest first."""
    query = (
        select(Notification, col(Ticket.number), col(Unit.name))
        .join(Ticket, col(Ticket.id) == col(Notification.ticket_id))
        .join(Unit, col(Unit.id) == col(Notification.unit_id))
        .order_by(col(Notification.read_at).is_not(None), col(Notification.id).desc())
        .limit(limit)
    )
    if unit_ids is not None:
        query = query.where(col(Notification.unit_id).in_(list(unit_ids)))
    return [NoticeRow(n, number, name) for n, number, name in session.execute(query).all()]


def unread_count(session: Session, unit_ids: Sequence[int] | None) -> int:
    query = (
        select(func.count()).select_from(Notification).where(col(Notification.read_at).is_(None))
    )
    if unit_ids is not None:
        query = query.where(col(Notification.unit_id).in_(list(unit_ids)))
    return int(session.execute(query).scalar_one())


def mark_read(
    session: Session, notice_id: int, *, reader: User, unit_ids: Sequence[int] | None,
    now: datetime,
) -> Notification:  # fmt: skip
    """The reader has seen the notice (the first reading is kept)."""
    notice = session.get(Notification, notice_id)
    if notice is None or (unit_ids is not None and notice.unit_id not in unit_ids):
        raise NotFound(f"notice {notice_id} does not exist")
    session.execute(
        update(Notification)
        .where(col(Notification.id) == notice_id, col(Notification.read_at).is_(None))
        .values(read_at=now, read_by=reader.id)
        .execution_options(synchronize_session=False)
    )
    session.refresh(notice)
    return notice


def queued_notice_sms(session: Session) -> list[int]:
    """Outbound messages of no contact still queued: the notices' texts to duty phones."""
    rows = session.execute(
        select(col(SmsMessage.id))
        .where(col(SmsMessage.contact_id).is_(None), col(SmsMessage.direction) == "out")
        .where(col(SmsMessage.state) == "queued")
        .order_by(col(SmsMessage.id))
        .limit(100)
    )
    return [row[0] for row in rows]
