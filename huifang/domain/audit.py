"""The append-only audit log: every reveal, playback, export and state change.

Entries are only ever inserted, in the same transaction as the action they record, so an
action and its audit entry commit or roll back together. Nothing may rewrite them, enforced
twice: the ORM refuses to update or delete one (a clear `Forbidden` before any SQL is sent),
and the database itself refuses any UPDATE or DELETE of the table, whoever sends it (a bulk
`update()`, raw SQL, a person on the application's connection): triggers created by the
initial migration from `APPEND_ONLY_CREATE` below. A database-level REVOKE UPDATE, DELETE for
the application role remains a good third line in a deployment.

The log records who did what, never a citizen's full number: every text of an entry
(target and detail) passes `mask_phones_in` on the way in, whatever the caller handed over;
readers mask again on the way out (`masked_for_reading`), for entries older than this rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from huifang.domain.models import AuditEvent, User
from huifang.errors import Forbidden
from huifang.phones import mask_phones_in

APPEND_ONLY_MESSAGE = "audit log is append-only"

#: Per dialect, the DDL that makes the audit table append-only in the database itself.
#: scripts/regenerate-initial-migration copies these statements, as literals, into the
#: generated migration (CREATE in upgrade, DROP in downgrade): this is their one definition.
#: A later migration that rebuilds the table (SQLite batch mode copies, drops and renames it)
#: loses the triggers with it and must create them again.
APPEND_ONLY_CREATE: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events"
        " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events"
        " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    ),
    # Row-level triggers: TRUNCATE fires neither, so the test suite's cleanup between
    # PostgreSQL tests (TRUNCATE … CASCADE) keeps working; the application never truncates.
    "postgresql": (
        "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ),
}
APPEND_ONLY_DROP: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "DROP TRIGGER IF EXISTS audit_events_no_update",
        "DROP TRIGGER IF EXISTS audit_events_no_delete",
    ),
    "postgresql": (
        "DROP TRIGGER IF EXISTS audit_events_no_update ON audit_events",
        "DROP TRIGGER IF EXISTS audit_events_no_delete ON audit_events",
        "DROP FUNCTION IF EXISTS audit_events_append_only()",
    ),
}


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
        target_id=mask_phones_in(str(target_id)),
        detail=_masked(detail or {}),
    )
    session.add(entry)
    return entry


def masked_for_reading(entry: AuditEvent) -> dict[str, Any]:
    """An entry's fields for a reader, with any number in it masked."""
    return {
        "id": entry.id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": mask_phones_in(entry.target_id),
        "detail": _masked(entry.detail),
    }


def _masked(value: Any) -> Any:
    """`value` (JSON-like) with every phone number in its texts masked."""
    if isinstance(value, str):
        return mask_phones_in(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(_mapper: Any, _connection: Any, entry: AuditEvent) -> None:
    raise Forbidden(f"audit event {entry.id}: the audit log is append-only")
