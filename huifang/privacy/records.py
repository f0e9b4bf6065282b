"""Removing a citizen's personal data from cases, one kind at a time, without changing a
figure.

Rules kept here:
- three kinds: `recordings` (the audio files; the row, its duration and language stay),
  `texts` (transcripts and word timings, answers given in words, SMS replies, complaint
  summaries, agents' notes, the incident's summary) and `identity` (phone numbers masked as
  138****5678, names cleared);
- what the figures are counted from stays as it was: every row, state, outcome, grade,
  category, time and unit. Also kept: supervision tickets (the official record of what the
  unit did) and the opt-out list (a number that asked never to be called must stay on it);
- an incident is claimed for a kind by a guarded `UPDATE … SET <kind>_at = now WHERE
  <kind>_at IS NULL`, so two workers never process one twice and a rerun does nothing;
- an audio file is deleted only once the transaction that forgot it has committed;
- a masked contact number stays unique in its campaign (`138****5678#1f`: the row id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select, update
from sqlmodel import Session, col

from huifang.db import remove_after_commit
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Contact,
    Escalation,
    Incident,
    Recording,
    SmsMessage,
)
from huifang.phones import mask_phone

#: answers whose value is the citizen's words, not a key or nothing
_KEYED_MODES = ("dtmf", "none")


class Kind(StrEnum):
    recordings = "recordings"
    texts = "texts"
    identity = "identity"


MARKERS: dict[Kind, Any] = {
    Kind.recordings: col(Incident.recordings_removed_at),
    Kind.texts: col(Incident.texts_removed_at),
    Kind.identity: col(Incident.identity_masked_at),
}


def remove(session: Session, kind: Kind, incident_ids: Sequence[int], now: datetime) -> int:
    """Remove `kind` from those of `incident_ids` not done yet; how many incidents that was."""
    marker = MARKERS[kind]
    claimed = session.execute(
        update(Incident)
        .where(col(Incident.id).in_(incident_ids), marker.is_(None))
        .values({marker: now})
        .returning(col(Incident.id))
    ).all()
    ids = [row[0] for row in claimed]
    if ids:
        _REMOVERS[kind](session, ids)
    return len(ids)


def _recordings_of(incident_ids: Sequence[int]) -> Select[Any]:
    return (
        select(col(Recording.id), col(Recording.path))
        .join(CallAttempt, col(CallAttempt.id) == col(Recording.attempt_id))
        .join(Contact, col(Contact.id) == col(CallAttempt.contact_id))
        .where(col(Contact.incident_id).in_(incident_ids))
    )


def _contact_ids(incident_ids: Sequence[int]) -> Select[Any]:
    return select(col(Contact.id)).where(col(Contact.incident_id).in_(incident_ids))


def _remove_recordings(session: Session, incident_ids: Sequence[int]) -> None:
    rows = session.execute(_recordings_of(incident_ids).where(col(Recording.path) != "")).all()
    for _recording_id, path in rows:
        remove_after_commit(session, Path(path))
    if rows:
        session.execute(
            update(Recording).where(col(Recording.id).in_([row[0] for row in rows])).values(path="")
        )


def _remove_texts(session: Session, incident_ids: Sequence[int]) -> None:
    recording_ids = [row[0] for row in session.execute(_recordings_of(incident_ids)).all()]
    if recording_ids:
        session.execute(
            update(Recording)
            .where(col(Recording.id).in_(recording_ids))
            .values(transcript="", words=[])
        )
    session.execute(
        update(Answer).where(col(Answer.incident_id).in_(incident_ids)).values(transcript="")
    )
    session.execute(
        update(Answer)
        .where(col(Answer.incident_id).in_(incident_ids), col(Answer.mode).not_in(_KEYED_MODES))
        .values(value="")
    )
    session.execute(
        update(SmsMessage)
        .where(
            col(SmsMessage.contact_id).in_(_contact_ids(incident_ids)),
            col(SmsMessage.direction) == "in",
        )
        .values(body="")
    )
    session.execute(
        update(Escalation)
        .where(col(Escalation.incident_id).in_(incident_ids))
        .values(summary="", notes="")
    )
    session.execute(update(Incident).where(col(Incident.id).in_(incident_ids)).values(summary=""))


def _mask_identity(session: Session, incident_ids: Sequence[int]) -> None:
    incidents = session.execute(
        select(col(Incident.id), col(Incident.caller_phone)).where(
            col(Incident.id).in_(incident_ids)
        )
    ).all()
    _update_by_id(
        session, Incident,
        [{"id": i, "caller_phone": mask_phone(phone), "caller_name": ""} for i, phone in incidents],
    )  # fmt: skip
    contacts = session.execute(
        select(col(Contact.id), col(Contact.phone)).where(
            col(Contact.incident_id).in_(incident_ids), col(Contact.phone).not_like("%*%")
        )
    ).all()
    _update_by_id(
        session, Contact,
        [{"id": i, "phone": f"{mask_phone(phone)}#{i:x}"} for i, phone in contacts],
    )  # fmt: skip
    mask_sms_phones(session, col(SmsMessage.contact_id).in_(_contact_ids(incident_ids)))


def mask_sms_phones(session: Session, which: Any) -> int:
    """Mask the phone of the SMS messages `which` selects; how many."""
    messages = session.execute(
        select(col(SmsMessage.id), col(SmsMessage.phone)).where(
            which, col(SmsMessage.phone).not_like("%*%")
        )
    ).all()
    _update_by_id(session, SmsMessage, [{"id": i, "phone": mask_phone(p)} for i, p in messages])
    return len(messages)


def _update_by_id(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(update(model), rows)


_REMOVERS: dict[Kind, Callable[[Session, Sequence[int]], None]] = {
    Kind.recordings: _remove_recordings,
    Kind.texts: _remove_texts,
    Kind.identity: _mask_identity,
}
