"""Security test fixtures: the API test world (units, one user per role, logged-in clients)
on SQLite **and** PostgreSQL, an escalation held by the agent, and ways to make the
database refuse a transaction (SQLite's write lock held by another connection, a
PostgreSQL table lock, a trigger refusing audit events)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from huifang.db import create_db_engine
from huifang.domain.models import Escalation
from tests.api import conftest as api_fixtures
from tests.api.conftest import PASSWORD, World
from tests.factories import make_escalation, make_incident

# the API tests' world (units, one user per role, logged-in clients), here on both databases
world = api_fixtures.world
runtime = api_fixtures.runtime
app_client = api_fixtures.app_client
login_as = api_fixtures.login_as
bearer_for = api_fixtures.bearer_for
__all__ = ["PASSWORD", "World"]

Login = Callable[[str], TestClient]
#: how long the app's connections wait for a lock before giving up, in milliseconds
LOCK_WAIT_MS = 200


@pytest.fixture
def sqlite_engine(sqlite_engine: Engine) -> Engine:
    """The SQLite engine, waiting only briefly for the write lock (the default is 30 s)."""

    def short_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")

    event.listen(sqlite_engine, "connect", short_wait)
    return sqlite_engine


@pytest.fixture
def postgres_engine(postgres_engine: Engine, postgres_url: str) -> Iterator[Engine]:
    """The PostgreSQL engine, waiting only briefly for a lock."""
    engine = create_db_engine(
        postgres_url, connect_args={"options": f"-c lock_timeout={LOCK_WAIT_MS}"}
    )
    yield engine
    engine.dispose()


@pytest.fixture
def escalation(engine: Engine, world: World) -> Escalation:
    with Session(engine, expire_on_commit=False) as session:
        item = make_escalation(session, incident=make_incident(session, unit=world.station))
        session.commit()
    return item


@pytest.fixture
def claimed(login_as: Login, escalation: Escalation) -> TestClient:
    """The agent's client, holding the claim on `escalation`."""
    agent = login_as("agent")
    assert agent.post(f"/api/v1/escalations/{escalation.id}/claim").status_code == 200
    return agent


@pytest.fixture
def writes_blocked(engine: Engine) -> Callable[[], AbstractContextManager[None]]:
    """A context in which another connection holds the lock every audit event needs:
    SQLite's write lock, or an exclusive lock on PostgreSQL's audit table."""

    @contextmanager
    def blocked() -> Iterator[None]:
        if engine.dialect.name == "sqlite":
            holder = sqlite3.connect(str(engine.url.database), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            return
        with engine.connect() as holder:
            holder.execute(text("LOCK TABLE audit_events IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                holder.rollback()

    return blocked


AUDIT_REFUSED = {
    "sqlite": (
        "CREATE TRIGGER audit_refused BEFORE INSERT ON audit_events"
        " BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION audit_refused() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
        "CREATE TRIGGER audit_refused BEFORE INSERT ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_refused()",
    ),
}
AUDIT_ACCEPTED = {
    "sqlite": ("DROP TRIGGER audit_refused",),
    "postgresql": (
        "DROP TRIGGER audit_refused ON audit_events",
        "DROP FUNCTION audit_refused()",
    ),
}


@pytest.fixture
def audit_refused(engine: Engine) -> Callable[[], AbstractContextManager[None]]:
    """A context in which the database refuses every new audit event (a trigger)."""

    @contextmanager
    def refused() -> Iterator[None]:
        dialect = engine.dialect.name
        with engine.begin() as conn:
            for statement in AUDIT_REFUSED[dialect]:
                conn.execute(text(statement))
        try:
            yield
        finally:
            with engine.begin() as conn:
                for statement in AUDIT_ACCEPTED[dialect]:
                    conn.execute(text(statement))

    return refused


def audit_actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT action FROM audit_events ORDER BY id"))]
