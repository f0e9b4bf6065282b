"""An admin edits a user: stored and read back on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from huifang.api.auth import session_revoked
from huifang.domain.models import AuditEvent, User
from huifang.domain.users import update_user, verify_password
from huifang.errors import Forbidden, NotFound
from tests.factories import make_unit, make_user

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def _edit_and_reload(engine: Engine, **fields: object) -> User:
    with Session(engine, expire_on_commit=False) as session:
        admin, agent = make_user(session, role="admin"), make_user(session)
        update_user(session, agent.id, actor=admin, now=NOW, **fields)  # type: ignore[arg-type]
        session.commit()
        agent_id = agent.id
    with Session(engine, expire_on_commit=False) as session:
        reloaded = session.get(User, agent_id)
        assert reloaded is not None
        return reloaded


def test_a_role_change_is_stored_and_ends_the_sessions(engine: Engine) -> None:
    user = _edit_and_reload(engine, role="inspector")
    assert user.role == "inspector"
    assert session_revoked(user, NOW)


def test_a_deactivation_is_stored_and_ends_the_sessions(engine: Engine) -> None:
    user = _edit_and_reload(engine, active=False)
    assert not user.active
    assert session_revoked(user, NOW)


def test_a_password_reset_is_stored_and_ends_the_sessions(engine: Engine) -> None:
    user = _edit_and_reload(engine, password="a new password 1")
    assert verify_password(user, "a new password 1")
    assert session_revoked(user, NOW)


def test_a_display_name_change_is_stored_and_keeps_the_sessions(engine: Engine) -> None:
    user = _edit_and_reload(engine, display_name="李四")
    assert user.display_name == "李四"
    assert not session_revoked(user, NOW)


def test_a_supervisor_gets_a_unit_that_exists(session: Session) -> None:
    admin, agent, unit = make_user(session, role="admin"), make_user(session), make_unit(session)
    update_user(session, agent.id, actor=admin, now=NOW, role="supervisor", unit_id=unit.id)  # type: ignore[arg-type]
    assert (agent.role, agent.unit_id) == ("supervisor", unit.id)


def test_the_audit_detail_holds_only_the_changed_fields(session: Session) -> None:
    admin, agent = make_user(session, role="admin"), make_user(session)
    update_user(
        session, agent.id, actor=admin, now=NOW,  # type: ignore[arg-type]
        role="agent", display_name="李四", password="a new password 1",
    )  # fmt: skip
    events = session.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "user.update")
    ).scalars()
    assert [e.detail for e in events] == [{"display_name": "李四", "password": "reset"}]


def test_an_edit_changing_nothing_writes_no_audit_event(session: Session) -> None:
    admin, agent = make_user(session, role="admin"), make_user(session)
    update_user(session, agent.id, actor=admin, now=NOW, role="agent")  # type: ignore[arg-type]
    events = session.execute(select(AuditEvent).where(col(AuditEvent.action) == "user.update"))
    assert events.all() == []


def test_a_non_admin_may_not_edit_a_user(session: Session) -> None:
    agent, colleague = make_user(session), make_user(session)
    with pytest.raises(Forbidden):
        update_user(session, colleague.id, actor=agent, now=NOW, display_name="x")  # type: ignore[arg-type]


def test_an_admin_may_not_deactivate_themselves(session: Session) -> None:
    admin = make_user(session, role="admin")
    with pytest.raises(ValueError, match="^active: .*their own account"):
        update_user(session, admin.id, actor=admin, now=NOW, active=False)  # type: ignore[arg-type]


def test_an_unknown_user_is_not_found(session: Session) -> None:
    admin = make_user(session, role="admin")
    with pytest.raises(NotFound):
        update_user(session, 999_999, actor=admin, now=NOW, display_name="x")
