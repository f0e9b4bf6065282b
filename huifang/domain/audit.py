"""The append-only audit log: every reveal, playback, export and state change.

Entries are only ever inserted, in the same transaction as the action they record, so an
action and its audit entry commit or roll back together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from huifang.domain.models import AuditEvent, User


def record_audit(
    session: Session,
    *,
    at: datetime,
    actor: User | None,
    action: str,
    target_type: str = "",
    target_id: object = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    entry = AuditEvent(
        at=at,
        actor_id=actor.id if actor else None,
        actor=actor.username if actor else "system",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=detail or {},
    )
    session.add(entry)
    return entry
