"""The audit log over HTTP, read-only, for admins and inspectors. Reading it is itself not
audited (it changes nothing and reveals no citizen data beyond what the entries name)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col

from huifang.api.auth import require_roles
from huifang.api.deps import SessionDep
from huifang.api.routes.common import IdFilter, Offset
from huifang.domain.models import AuditEvent
from huifang.domain.users import Role

router = APIRouter(
    prefix="/audit",
    tags=["audit"],
    dependencies=[Depends(require_roles(Role.admin, Role.inspector))],
)


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
    action: Annotated[str | None, Query(max_length=48)] = None,
    actor_id: IdFilter = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[AuditEventPublic]:
    """Newest first."""
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
        AuditEventPublic.model_validate(e, from_attributes=True)
        for e in session.execute(query).scalars()
    ]
