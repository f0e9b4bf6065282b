"""Ending a user's console sessions, stored and read back on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.auth import session_revoked
from huifang.domain.models import User
from huifang.domain.users import end_sessions
from huifang.errors import Forbidden
from tests.factories import make_user

NOW = datetime(2026, 11, 24, 2, 0, 0, 250_000, tzinfo=UTC)


def _ended_and_reloaded(engine: Engine) -> User:
    with Session(engine, expire_on_commit=False) as session:
        user = make_user(session)
        end_sessions(session, user, NOW, actor=user)
        session.commit()
        user_id = user.id
    with Session(engine, expire_on_commit=False) as session:
        reloaded = session.get(User, user_id)
        assert reloaded is not None
        return reloaded


def test_a_cookie_signed_in_the_second_of_the_ending_is_refused(engine: Engine) -> None:
    user = _ended_and_reloaded(engine)
    assert session_revoked(user, NOW.replace(microsecond=0))


def test_a_cookie_signed_the_next_second_is_accepted(engine: Engine) -> None:
    user = _ended_and_reloaded(engine)
    assert not session_revoked(user, NOW.replace(microsecond=0) + timedelta(seconds=1))


def test_a_user_whose_sessions_never_ended_keeps_them(session: Session) -> None:
    user = make_user(session)
    assert not session_revoked(user, NOW - timedelta(days=1))


def test_only_an_admin_ends_another_users_sessions(session: Session) -> None:
    agent, colleague = make_user(session), make_user(session)
    with pytest.raises(Forbidden):
        end_sessions(session, colleague, NOW, actor=agent)
