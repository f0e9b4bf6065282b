"""Accounts: roles, argon2 password hashes, password login, the end of a user's sessions.

Rules kept here:
- passwords are stored only as argon2id hashes (pwdlib); an unknown username still costs one
  hash verification, so response time does not tell which usernames exist;
- ending a user's sessions also revokes their API tokens (`huifang.domain.api_tokens`);
- login failures are audit events; how many attempts may be made is the business of
  `huifang.domain.login_throttle`, which the caller consults before `login`;
- every account change is audited in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import ApiToken, EndedSession, Unit, User
from huifang.errors import Conflict, Forbidden, HuifangError, NotFound

MIN_PASSWORD_LENGTH = 8


class Role(StrEnum):
    admin = "admin"
    #: works the escalation queue and calls citizens back
    agent = "agent"
    #: a unit's chief: sees only the tickets and statistics of the unit's subtree
    supervisor = "supervisor"
    #: discipline / audit office: reads everything, listens to recordings
    inspector = "inspector"
    #: another system calling the API with a token (incident import)
    integration = "integration"


class LoginRefused(HuifangError):
    """Wrong username or password, or an inactive account (deliberately not told apart)."""


class LoginRateLimited(LoginRefused):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(
            f"too many failed logins; try again in {int(retry_after.total_seconds())} s"
        )
        self.retry_after = retry_after


@cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher().hash(password)


def verify_password(user: User, password: str) -> bool:
    """True when `password` matches; an account without a password (token-only) never matches."""
    if not user.password_hash:
        _hasher().verify(password, _dummy_hash())
        return False
    return _hasher().verify(password, user.password_hash)


def _checked_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValueError(f"role: {role!r} is not one of {', '.join(Role)}") from None


def _check_unit(session: Session, role: Role, unit_id: int | None) -> None:
    """An account's unit: a supervisor needs one; a unit given must exist (any role)."""
    if role is Role.supervisor and unit_id is None:
        raise ValueError("unit_id: a supervisor belongs to a unit")
    if unit_id is not None and session.get(Unit, unit_id) is None:
        raise ValueError(f"unit_id: unit {unit_id} does not exist")


def create_user(
    session: Session,
    *,
    username: str,
    role: Role | str,
    password: str | None,
    now: datetime,
    unit_id: int | None = None,
    display_name: str = "",
    phone: str = "",
    actor: User | None = None,
) -> User:
    """A new account. Supervisors need a unit; `password=None` makes a token-only account."""
    role = _checked_role(role)
    username = username.strip()
    if not username or len(username) > 64:
        raise ValueError("username: 1 to 64 characters")
    _check_unit(session, role, unit_id)
    if session.execute(select(col(User.id)).where(col(User.username) == username)).first():
        raise Conflict(f"username: {username!r} is taken")
    user = User(
        username=username,
        role=role.value,
        unit_id=unit_id,
        display_name=display_name,
        phone=phone,
        password_hash=hash_password(password) if password is not None else "",
        created_at=now,
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        at=now,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=user.id,
        detail={"username": username, "role": role.value, "unit_id": unit_id},
    )
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def update_user(
    session: Session,
    user_id: int,
    *,
    actor: User,
    now: datetime,
    role: Role | str | None = None,
    unit_id: int | None = None,
    display_name: str | None = None,
    phone: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """An admin edits an account; `None` leaves a field as it is (so a unit is never cleared).

    The role and unit follow create_user's rules. An admin cannot deactivate themselves or
    give up their own admin role. Only changed fields are written, audited once as
    `user.update` (a password as "reset", never its value); a role change, a deactivation or
    a password reset ends the user's console sessions in the same transaction.
    """
    if actor.role != Role.admin:
        raise Forbidden("only an admin edits a user")
    user = get_user(session, user_id)
    changes: dict[str, Any] = {}
    new_role = _checked_role(role) if role is not None else Role(user.role)
    if new_role != user.role:
        changes["role"] = new_role.value
    if unit_id is not None and unit_id != user.unit_id:
        changes["unit_id"] = unit_id
    if display_name is not None and display_name != user.display_name:
        changes["display_name"] = display_name
    if phone is not None and phone != user.phone:
        changes["phone"] = phone
    if active is not None and active != user.active:
        changes["active"] = active
    if user.id == actor.id and changes.get("active") is False:
        raise ValueError("active: an admin cannot deactivate their own account")
    if user.id == actor.id and "role" in changes:
        raise ValueError("role: an admin cannot remove their own admin role")
    if "role" in changes or "unit_id" in changes:
        _check_unit(session, new_role, unit_id if unit_id is not None else user.unit_id)
    password_hash = hash_password(password) if password is not None else None
    if not changes and password_hash is None:
        return user
    for field, value in changes.items():
        setattr(user, field, value)
    if password_hash is not None:
        user.password_hash = password_hash
        changes["password"] = "reset"
    session.add(user)
    record_audit(
        session,
        at=now,
        actor=actor,
        action="user.update",
        target_type="user",
        target_id=user.id,
        detail=changes,
    )
    if {"role", "password"} & changes.keys() or changes.get("active") is False:
        end_sessions(session, user, now, actor=actor)
    return user


def login(session: Session, username: str, password: str, now: datetime) -> User:
    """The active user with these credentials; raises LoginRefused.

    A failure is recorded in the session (`login.failed`): the caller commits it even
    though login failed.
    """
    user = session.execute(select(User).where(col(User.username) == username)).scalars().first()
    if user is None:
        _hasher().verify(password, _dummy_hash())
    if user is None or not user.active or not verify_password(user, password):
        record_audit(
            session,
            at=now,
            actor=None,
            action="login.failed",
            target_type="user",
            target_id=username[:64],
        )
        raise LoginRefused("wrong username or password")
    record_audit(session, at=now, actor=user, action="login", target_type="user", target_id=user.id)
    return user


def end_sessions(session: Session, user: User, now: datetime, *, actor: User) -> None:
    """End every console session of `user` signed up to now, and revoke their API tokens.

    Call it in the same transaction as any change that must log the user out: deactivation,
    a role change, a password reset. `actor` is the user themselves (logout everywhere) or
    an admin. A revoked token stays revoked: reactivating the user brings none back.
    """
    if actor.id != user.id and actor.role != Role.admin:
        raise Forbidden("only an admin ends another user's sessions")
    user.sessions_valid_from = now
    session.add(user)
    revoked = session.exec(
        update(ApiToken)
        .where(col(ApiToken.user_id) == user.id)
        .where(col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    record_audit(
        session,
        at=now,
        actor=actor,
        action="user.sessions_end",
        target_type="user",
        target_id=user.id,
        detail={"tokens_revoked": revoked.rowcount},
    )


def log_out(
    session: Session, user: User, session_key: str, *, now: datetime, expires_at: datetime
) -> None:
    """End one console session, known by `session_key`, before its cookie expires (a logout);
    audited. The key is kept until `expires_at`, when the cookie would have expired anyway."""
    if session.get(EndedSession, session_key) is None:
        session.add(
            EndedSession(
                session_key=session_key,
                user_id=user.id,  # type: ignore[arg-type]  # a stored row: its id is set
                ended_at=now,
                expires_at=expires_at,
            )
        )
    record_audit(
        session, at=now, actor=user, action="logout", target_type="user", target_id=user.id
    )


def has_logged_out(session: Session, session_key: str) -> bool:
    return session.get(EndedSession, session_key) is not None


def forget_ended_sessions(session: Session, now: datetime) -> int:
    """Forget logouts whose cookie has expired anyway (housekeeping); how many."""
    gone = session.exec(delete(EndedSession).where(col(EndedSession.expires_at) < now))
    return int(gone.rowcount or 0)


def list_users(session: Session) -> Sequence[User]:
    return session.execute(select(User).order_by(col(User.username))).scalars().all()
