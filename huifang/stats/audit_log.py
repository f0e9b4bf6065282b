"""Searching the audit log for inspectors: read-only, newest first, bounded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session, col

from huifang.domain.models import AuditEvent


def search_audit(
    session: Session,
    *,
    text: str = "",
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> Sequence[AuditEvent]:
    """Entries whose actor, action or target contains `text`, whose action starts with
    `action` (`escalation.` finds every escalation step), within `[since, until)`."""
    query = select(AuditEvent)
    if text.strip():
        needle = f"%{text.strip()}%"
        query = query.where(
            or_(
                col(AuditEvent.actor).like(needle),
                col(AuditEvent.action).like(needle),
                col(AuditEvent.target_type).like(needle),
                col(AuditEvent.target_id).like(needle),
            )
        )
    if action.strip():
        query = query.where(col(AuditEvent.action).startswith(action.strip()))
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.at) < until)
    query = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(limit)
    return session.execute(query).scalars().all()
