"""The audit log is append-only in the database itself, not only through the ORM: triggers
created by the migration refuse any UPDATE or DELETE of audit_events, on SQLite and PostgreSQL,
whoever sends it (here: plain SQL on the application's own connection)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from huifang.db import downgrade, upgrade
from huifang.domain.audit import APPEND_ONLY_MESSAGE, record_audit
from huifang.domain.models import AuditEvent

AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def _one_event(engine: Engine) -> int:
    with Session(engine, expire_on_commit=False) as session:
        entry = record_audit(
            session, at=AT, actor=None, action="ticket.issue", target_type="ticket", target_id=7
        )
        session.commit()
    assert entry.id is not None
    return entry.id


def _actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT action FROM audit_events ORDER BY id")).scalars())


def _triggers(engine: Engine) -> set[str]:
    """The triggers and trigger functions of the audit table that exist in the database."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            return set(conn.execute(text(query)).scalars())
        triggers = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
        functions = conn.execute(
            text("SELECT proname FROM pg_proc WHERE proname = 'audit_events_append_only'")
        )
        return set(triggers.scalars()) | set(functions.scalars())


def test_inserting_an_audit_event_works(engine: Engine) -> None:
    event_id = _one_event(engine)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT actor, action, target_id FROM audit_events WHERE id = :id"),
            {"id": event_id},
        ).one()
    assert tuple(row) == ("system", "ticket.issue", "7")


@pytest.mark.parametrize(
    "statement",
    [
        text("UPDATE audit_events SET action = 'nothing.happened'"),
        update(AuditEvent).values(action="nothing.happened"),  # bypasses the ORM's listener
    ],
    ids=["sql", "bulk-update"],
)
def test_an_update_is_refused_by_the_database(engine: Engine, statement: object) -> None:
    _one_event(engine)
    with pytest.raises(DBAPIError, match=APPEND_ONLY_MESSAGE), engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]
    assert _actions(engine) == ["ticket.issue"]


@pytest.mark.parametrize(
    "statement",
    [text("DELETE FROM audit_events"), delete(AuditEvent)],
    ids=["sql", "bulk-delete"],
)
def test_a_delete_is_refused_by_the_database(engine: Engine, statement: object) -> None:
    _one_event(engine)
    with pytest.raises(DBAPIError, match=APPEND_ONLY_MESSAGE), engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]
    assert _actions(engine) == ["ticket.issue"]


def test_downgrade_removes_the_triggers_and_upgrade_restores_them(engine: Engine) -> None:
    expected = {"audit_events_no_update", "audit_events_no_delete"}
    if engine.dialect.name == "postgresql":
        expected.add("audit_events_append_only")
    assert _triggers(engine) == expected
    downgrade(engine, "base")
    assert _triggers(engine) == set()
    upgrade(engine)
    assert _triggers(engine) == expected
    _one_event(engine)
    with pytest.raises(DBAPIError, match=APPEND_ONLY_MESSAGE), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))


@pytest.mark.postgres
def test_truncate_still_empties_the_table_on_postgresql(postgres_engine: Engine) -> None:
    """Row triggers do not fire on TRUNCATE: the test suite's cleanup between tests relies
    on it (the application itself never truncates the audit log)."""
    _one_event(postgres_engine)
    with postgres_engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))
    assert _actions(postgres_engine) == []
