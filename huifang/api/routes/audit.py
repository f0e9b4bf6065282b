"""The audit log over HTTP, read-only, for admins and inspectors: searched by words anywhere
(details too), action, actor, target and time, paged with a total. Reading it is itself
audited (`audit.read`, with the filters asked for), and any number in an entry is masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from huifang.api.auth import require_roles
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import TOTAL_COUNT, DomainRoute, IdFilter, Offset
from huifang.domain.audit import masked_for_reading, record_audit
from huifang.domain.models import User
from huifang.domain.users import Role
from huifang.stats.audit_log import MAX_PAGE, AuditFilters, search_audit

router = APIRouter(prefix="/audit", tags=["audit"], route_class=DomainRoute)
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


@router.get("", response_model=list[AuditEventPublic], responses={200: {"headers": TOTAL_COUNT}})
def list_endpoint(
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    auditor: Auditor,
    q: Annotated[
        str, Query(max_length=200, description="words anywhere: actor, action, target, details")
    ] = "",
    action: Annotated[
        str, Query(max_length=48, description="the action or its start, e.g. `ticket.`")
    ] = "",
    actor: Annotated[str, Query(max_length=64, description="the actor's user name")] = "",
    actor_id: IdFilter = None,
    target_type: Annotated[str, Query(max_length=32)] = "",
    target_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[datetime | None, Query(description="from this moment")] = None,
    until: Annotated[datetime | None, Query(description="before this moment")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> list[AuditEventPublic]:
    """Newest first, a page at a time (`X-Total-Count` says how many match); audited as
    `audit.read` with the filters asked for."""
    filters = AuditFilters(
        text=q, action=action, actor=actor, actor_id=actor_id, target_type=target_type,
        target_id=target_id, since=since, until=until,
    )  # fmt: skip
    page = search_audit(session, filters, limit=limit, offset=offset)
    record_audit(
        session, at=clock.now(), actor=auditor, action="audit.read", target_type="audit_log",
        detail=filters.as_json(),
    )  # fmt: skip
    response.headers["X-Total-Count"] = str(page.total)
    return [AuditEventPublic.model_validate(masked_for_reading(e)) for e in page.entries]
