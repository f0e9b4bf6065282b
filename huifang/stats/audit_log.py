"""Searching the audit log for inspectors and admins: read-only, newest first, paged with the
total it pages through (never a silent cap).

The text search reaches every field, the details too: details are stored as JSON text, whose
older rows spell Chinese as `\\uXXXX` escapes, so a term is looked for both as typed and as
JSON escapes it. Terms are matched literally (`%` and `_` are no wildcards).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col

from huifang.domain.models import AuditEvent
from huifang.domain.search import exact_term

#: entries per page at most
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class AuditFilters:
    #: words anywhere: actor, action, target, details
    text: str = ""
    #: the action, or its start (`escalation.` finds every escalation step)
    action: str = ""
    #: the actor's user name, exactly; or the actor's id
    actor: str = ""
    actor_id: int | None = None
    #: the target's type (`ticket`) and, optionally, its id
    target_type: str = ""
    target_id: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def checked(self) -> AuditFilters:
        """The filters with their terms trimmed; ValueError naming a field with control
        characters."""
        return AuditFilters(
            text=exact_term("q", self.text), action=exact_term("action", self.action),
            actor=exact_term("actor", self.actor), actor_id=self.actor_id,
            target_type=exact_term("target_type", self.target_type),
            target_id=exact_term("target_id", self.target_id), since=self.since, until=self.until,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """The filters given, for the `audit.read` entry."""
        given = {
            "q": self.text, "action": self.action, "actor": self.actor,
            "actor_id": self.actor_id or "",
            "target_type": self.target_type, "target_id": self.target_id,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }  # fmt: skip
        return {key: value for key, value in given.items() if value}


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: Sequence[AuditEvent]
    total: int
    offset: int
    limit: int


def _containing(term: str) -> ColumnElement[bool]:
    details = cast(col(AuditEvent.detail), String)
    escaped = json.dumps(term)[1:-1]  # as JSON with ensure_ascii spells it
    fields = [
        col(AuditEvent.actor), col(AuditEvent.action), col(AuditEvent.target_type),
        col(AuditEvent.target_id), details,
    ]  # fmt: skip
    matches = [field.contains(term, autoescape=True) for field in fields]
    if escaped != term:
        matches.append(details.contains(escaped, autoescape=True))
    return or_(*matches)


def _filtered(query: Select[Any], filters: AuditFilters) -> Select[Any]:
    for word in filters.text.split():
        query = query.where(_containing(word))
    if filters.action:
        query = query.where(col(AuditEvent.action).startswith(filters.action, autoescape=True))
    if filters.actor:
        query = query.where(col(AuditEvent.actor) == filters.actor)
    if filters.actor_id is not None:
        query = query.where(col(AuditEvent.actor_id) == filters.actor_id)
    if filters.target_type:
        query = query.where(col(AuditEvent.target_type) == filters.target_type)
    if filters.target_id:
        query = query.where(col(AuditEvent.target_id) == filters.target_id)
    if filters.since is not None:
        query = query.where(col(AuditEvent.at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(AuditEvent.at) < filters.until)
    return query


def search_audit(
    session: Session, filters: AuditFilters, *, limit: int = 100, offset: int = 0
) -> AuditPage:
    """One page of the entries matching every filter (each word of the text somewhere),
    newest first, with how many match in all."""
    filters = filters.checked()
    limit = max(1, min(limit, MAX_PAGE))
    total = session.execute(_filtered(select(func.count()).select_from(AuditEvent), filters))
    query = _filtered(select(AuditEvent), filters).order_by(
        col(AuditEvent.at).desc(), col(AuditEvent.id).desc()
    )
    entries = session.execute(query.limit(limit).offset(offset)).scalars().all()
    return AuditPage(entries=entries, total=int(total.scalar_one()), offset=offset, limit=limit)


def readable_detail(detail: dict[str, Any]) -> str:
    """An entry's details as a person reads them: `key: value` pairs, Chinese as written."""
    return " · ".join(
        f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in detail.items()
    )
