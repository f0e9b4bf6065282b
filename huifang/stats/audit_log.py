"""Searching the audit log for inspectors: read-only, newest first, bounded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session

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
                AuditEvent.actor.like(needle),  # type: ignore[attr-defined]
                AuditEvent.action.like(needle),  # type: ignore[attr-defined]
                AuditEvent.target_type.like(needle),  # type: ignore[attr-defined]
                AuditEvent.target_id.like(needle),  # type: ignore[attr-defined]
            )
        )
    if action.strip():
        query = query.where(AuditEvent.action.startswith(action.strip()))  # type: ignore[attr-defined]
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)  # type: ignore[attr-defined,union-attr]
    return session.exec(query).scalars().all()  # type: ignore[call-overload,no-any-return]
