"""The audit log over HTTP, read-only, for admins and inspectors. Reading it is itself
audited (`audit.read`, with the filters asked for), and any number in an entry is masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col

from huifang.api.auth import require_roles
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import IdFilter, Offset
from huifang.domain.audit import masked_for_reading, record_audit
from huifang.domain.models import AuditEvent, User
from huifang.domain.users import Role

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[User, Depends(require_roles(Role.admin, Role.inspector))]


class AuditEventPublic(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]


@router.get("", response_model=list[AuditEventPublic])
def list_endpoint(
    session: SessionDep,
    clock: ClockDep,
    auditor: Auditor,
    action: Annotated[str | None, Query(max_length=48)] = None,
    actor_id: IdFilter = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[AuditEventPublic]:
    """Newest first; audited as `audit.read`."""
    filters = {"action": action, "actor_id": actor_id, "target_type": target_type,
               "target_id": target_id, "since": since.isoformat() if since else None}  # fmt: skip
    record_audit(
        session, at=clock.now(), actor=auditor, action="audit.read", target_type="audit_log",
        detail={k: v for k, v in filters.items() if v is not None},
    )  # fmt: skip
    query = select(AuditEvent)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    if actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == actor_id)
    if target_type:
        query = query.where(col(AuditEvent.target_type) == target_type)
    if target_id:
        query = query.where(col(AuditEvent.target_id) == target_id)
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    query = query.order_by(col(AuditEvent.id).desc()).limit(limit).offset(offset)
    return [
        AuditEventPublic.model_validate(masked_for_reading(e))
        for e in session.execute(query).scalars()
    ]
