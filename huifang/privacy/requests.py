"""A citizen's request about their personal data, by phone number: a copy of everything held
(`export_phone`), or its erasure (`erase_phone`).

Rules kept here:
- a number is found wherever it is stored in full: incidents, survey contacts, SMS messages,
  the opt-out list;
- an export holds the citizen's own data in full (it goes to them), and the files of their
  recordings; it is audited with the number masked;
- an erasure removes every kind (`records`) from every case of the number at once, closed
  or not, and masks the SMS that matched no case; a survey of that number still under way is
  stopped first (its contact excluded, queued calls cancelled), so nothing ever dials a
  masked number: the only change a figure may see is that unfinished survey no longer
  counting as surveyed. Kept: the opt-out entry (a citizen who asked never to be called
  stays on the list) and the supervision tickets. Audited with the number masked;
- both refuse a number that is not one (`normalize_phone`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, SQLModel, col

from huifang.domain.audit import record_audit
from huifang.domain.campaigns import exclude_contact
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Contact,
    Escalation,
    Incident,
    OptOut,
    Recording,
    SmsMessage,
    Ticket,
)
from huifang.domain.states import ContactState
from huifang.phones import mask_phone
from huifang.privacy.records import Kind, mask_sms_phones, remove


@dataclass
class Holdings:
    """Where one number is held: the cases (incidents) and the rows outside them."""

    incident_ids: list[int]
    contact_ids: list[int]
    unmatched_sms_ids: list[int]
    opt_out: OptOut | None


def find_phone(session: Session, phone: str) -> Holdings:
    incident_ids = {
        row[0]
        for row in session.execute(
            select(col(Incident.id)).where(col(Incident.caller_phone) == phone)
        )
    }
    contacts = session.execute(
        select(col(Contact.id), col(Contact.incident_id)).where(col(Contact.phone) == phone)
    ).all()
    incident_ids.update(incident_id for _id, incident_id in contacts)
    unmatched = session.execute(
        select(col(SmsMessage.id)).where(
            col(SmsMessage.phone) == phone, col(SmsMessage.contact_id).is_(None)
        )
    ).all()
    opt_out = session.execute(select(OptOut).where(col(OptOut.phone) == phone)).scalars().first()
    return Holdings(
        incident_ids=sorted(incident_ids),
        contact_ids=[contact_id for contact_id, _ in contacts],
        unmatched_sms_ids=[row[0] for row in unmatched],
        opt_out=opt_out,
    )


@dataclass
class Export:
    """Everything held about one number, as JSON-ready dicts, and its recordings' files."""

    document: dict[str, Any]
    recording_files: list[str] = field(default_factory=list)


def export_phone(session: Session, phone: str, *, now: datetime, reason: str = "") -> Export:
    held = find_phone(session, phone)
    ids = held.incident_ids
    contact_ids = _all_contact_ids(session, ids)
    attempts = _rows(session, CallAttempt, col(CallAttempt.contact_id).in_(contact_ids))
    recordings = _rows(
        session, Recording, col(Recording.attempt_id).in_([a["id"] for a in attempts])
    )
    for attempt in attempts:
        attempt.pop("ivr_log", None)  # the interpreter's replay log: the answers say it
    document = {
        "phone": phone,
        "exported_at": now.isoformat(),
        "incidents": _rows(session, Incident, col(Incident.id).in_(ids)),
        "survey_contacts": _rows(session, Contact, col(Contact.id).in_(contact_ids)),
        "calls": attempts,
        "answers": _rows(session, Answer, col(Answer.incident_id).in_(ids)),
        "recordings": recordings,
        "sms": _rows(
            session,
            SmsMessage,
            col(SmsMessage.contact_id).in_(contact_ids)
            | col(SmsMessage.id).in_(held.unmatched_sms_ids),
        ),
        "escalations": _rows(session, Escalation, col(Escalation.incident_id).in_(ids)),
        "tickets": _rows(session, Ticket, col(Ticket.incident_id).in_(ids)),
        "opt_out": _plain(held.opt_out) if held.opt_out else None,
    }
    record_audit(
        session, at=now, actor=None, action="privacy.export", target_type="phone",
        target_id=mask_phone(phone), detail={"incidents": len(ids), "reason": reason},
    )  # fmt: skip
    return Export(document, [r["path"] for r in recordings if r["path"]])


@dataclass(frozen=True, slots=True)
class Erasure:
    incidents: int
    surveys_stopped: int
    unmatched_sms: int
    opted_out_kept: bool


def erase_phone(session: Session, phone: str, *, now: datetime, reason: str = "") -> Erasure:
    held = find_phone(session, phone)
    stopped = 0
    for contact_id in _all_contact_ids(session, held.incident_ids):
        contact = session.get(Contact, contact_id)
        open_states = (ContactState.pending, ContactState.in_progress)
        if contact is not None and contact.state in open_states:
            stopped += exclude_contact(session, contact_id, reason="erased", now=now)
    # force: an erasure does not wait for the case to close, nor mind what was done before
    session.execute(
        Incident.__table__.update()  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
        .where(col(Incident.id).in_(held.incident_ids))
        .values(recordings_removed_at=None, texts_removed_at=None, identity_masked_at=None)
    )
    for kind in Kind:
        remove(session, kind, held.incident_ids, now)
    unmatched = mask_sms_phones(session, col(SmsMessage.id).in_(held.unmatched_sms_ids))
    session.execute(
        SmsMessage.__table__.update()  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
        .where(col(SmsMessage.id).in_(held.unmatched_sms_ids))
        .values(body="")
    )
    erasure = Erasure(len(held.incident_ids), stopped, unmatched, held.opt_out is not None)
    record_audit(
        session, at=now, actor=None, action="privacy.erase", target_type="phone",
        target_id=mask_phone(phone),
        detail={"incidents": erasure.incidents, "surveys_stopped": stopped,
                "unmatched_sms": unmatched, "reason": reason},
    )  # fmt: skip
    return erasure


def _all_contact_ids(session: Session, incident_ids: Sequence[int]) -> list[int]:
    """Every survey contact of these cases (whatever number it was made with)."""
    rows = session.execute(
        select(col(Contact.id)).where(col(Contact.incident_id).in_(incident_ids))
    )
    return [row[0] for row in rows]


def _rows(session: Session, model: type[SQLModel], where: Any) -> list[dict[str, Any]]:
    found = session.execute(select(model).where(where).order_by(model.id)).scalars()  # type: ignore[attr-defined]
    return [_plain(row) for row in found]


def _plain(row: SQLModel) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.model_dump().items()}
