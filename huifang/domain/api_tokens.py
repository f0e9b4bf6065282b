"""API tokens: created with a name and an expiry, listed, revoked.

Rules kept here:
- a token is shown once, when created; only its sha256 is stored;
- every token expires: `DEFAULT_LIFETIME` unless asked otherwise, never beyond
  `MAX_LIFETIME`; a user holds at most `MAX_LIVE_TOKENS` live tokens;
- an admin creates tokens for any account; any other user only for themselves; an
  integration account gets its tokens from an admin only (or the command line, `actor`
  None); the API refuses a token that would create a token (`huifang.api.routes.users`);
- a token works while it is neither revoked nor expired and its user is active; ending a
  user's sessions (password reset, role change, deactivation, logout everywhere, an
  admin's revocation: `users.end_sessions`) revokes their tokens in the same transaction;
- its owner or an admin revokes it; every creation and revocation is audited with the real
  actor (an admin creating a token for agent2 is recorded as the admin), the owner in the
  detail.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import ApiToken, User
from huifang.domain.users import Role
from huifang.errors import Forbidden, NotFound

TOKEN_PREFIX = "hf_"
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=365)
MAX_LIVE_TOKENS = 10
#: last_used_at is written at most this often per token, not on every request
_LAST_USED_PRECISION = timedelta(hours=1)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(col(ApiToken.revoked_at).is_(None), col(ApiToken.expires_at) > now)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    row: ApiToken
    #: the token itself: shown once, never stored
    token: str


def create_api_token(
    session: Session, owner: User, name: str, now: datetime, **options: Any
) -> str:
    """A new token acting as `owner` (`issue_api_token`, with its options), the token alone."""
    return issue_api_token(session, owner, name, now, **options).token


def issue_api_token(
    session: Session,
    owner: User,
    name: str,
    now: datetime,
    *,
    actor: User | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> IssuedToken:
    """A new token acting as `owner`, with its row. `actor` is who asks (None: the command
    line); ValueError for a bad name or lifetime, Forbidden for a user it may not serve."""
    name = name.strip()
    if not name or len(name) > 64:
        raise ValueError("name: 1 to 64 characters, saying what the token is for")
    if not timedelta(days=1) <= lifetime <= MAX_LIFETIME:
        raise ValueError(f"expires_in_days: from 1 to {MAX_LIFETIME.days} days")
    if actor is not None and actor.role != Role.admin:
        if actor.id != owner.id:
            raise Forbidden("only an admin creates tokens for another user")
        if owner.role == Role.integration:
            raise Forbidden("an integration account gets its tokens from an admin")
    live = session.execute(
        select(func.count())
        .select_from(ApiToken)
        .where(col(ApiToken.user_id) == owner.id, _live(now))
    ).scalar_one()
    if live >= MAX_LIVE_TOKENS:
        raise ValueError(
            f"name: {owner.username} holds {MAX_LIVE_TOKENS} live tokens already; revoke one first"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=owner.id,  # type: ignore[arg-type]  # a stored row: its id is set
        name=name,
        token_hash=_token_hash(token),
        created_at=now,
        created_by=actor.id if actor else None,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    record_audit(
        session, at=now, actor=actor, action="token.create", target_type="api_token",
        target_id=row.id,
        detail={"name": name, "owner": owner.username, "expires_at": row.expires_at.isoformat()},
    )  # fmt: skip
    return IssuedToken(row, token)


def list_api_tokens(
    session: Session, *, actor: User | None, owner_id: int | None = None
) -> Sequence[ApiToken]:
    """Tokens newest first: an owner's, or (admins and the command line) everyone's."""
    if actor is not None and actor.role != Role.admin and owner_id != actor.id:
        raise Forbidden("only an admin lists another user's tokens")
    query = select(ApiToken).order_by(col(ApiToken.id).desc())
    if owner_id is not None:
        query = query.where(col(ApiToken.user_id) == owner_id)
    return session.execute(query).scalars().all()


def revoke_api_token(
    session: Session, token_id: int, *, actor: User | None, now: datetime
) -> ApiToken:
    """Revoke a token (its owner or an admin; None: the command line). Revoking a revoked
    token changes nothing and is not audited again."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"api token {token_id} does not exist")
    if actor is not None and actor.role != Role.admin and actor.id != row.user_id:
        raise Forbidden("only its owner or an admin revokes a token")
    moved = session.exec(
        update(ApiToken)
        .where(col(ApiToken.id) == token_id)
        .where(col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    if moved.rowcount == 1:
        session.refresh(row)
        record_audit(
            session, at=now, actor=actor, action="token.revoke", target_type="api_token",
            target_id=token_id, detail={"name": row.name},
        )  # fmt: skip
    return row


def token_state(row: ApiToken, now: datetime) -> str:
    """live / expired / revoked, for lists."""
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= now else "live"


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    """The active user of a live token, or None. Marks the token used (at most hourly)."""
    row = (
        session.execute(
            select(ApiToken).where(col(ApiToken.token_hash) == _token_hash(token), _live(now))
        )
        .scalars()
        .first()
    )
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    # one write per hour per token, not one per request: keeps SQLite writers free
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_PRECISION:
        row.last_used_at = now
    return user
