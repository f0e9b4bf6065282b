"""Accounts over HTTP: admins create and edit users; API tokens are listed, created and
revoked by their owner or an admin (`huifang.domain.api_tokens` decides who may); everyone
may read themselves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field

from huifang.api.auth import CurrentUser, require_roles
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import MAX_ID, DomainRoute, RecordId
from huifang.domain.api_tokens import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    issue_api_token,
    list_api_tokens,
    revoke_api_token,
    token_state,
)
from huifang.domain.models import ApiToken, User
from huifang.domain.users import (
    Role,
    create_user,
    end_sessions,
    get_user,
    list_users,
    update_user,
)
from huifang.errors import Forbidden, NotFound

router = APIRouter(prefix="/users", tags=["users"], route_class=DomainRoute)
Admin = Annotated[User, Depends(require_roles(Role.admin))]


class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    unit_id: int | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        assert user.id is not None
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            unit_id=user.unit_id,
            active=user.active,
            created_at=user.created_at,
        )


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    password: str | None = Field(
        default=None, min_length=8, max_length=256, description="omit for a token-only account"
    )
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    display_name: str = Field(default="", max_length=128)
    phone: str = Field(default="", max_length=20, description="the agent's own phone (E.164)")


class UserUpdate(BaseModel):
    """The fields to change; an omitted (or null) field stays as it is."""

    role: Role | None = None
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    display_name: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=20)
    active: bool | None = None
    password: str | None = Field(
        default=None, min_length=8, max_length=256, description="a new password (a reset)"
    )


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="what the token is for")
    expires_in_days: int = Field(
        default=DEFAULT_LIFETIME.days, ge=1, le=MAX_LIFETIME.days, description="its lifetime"
    )


class TokenPublic(BaseModel):
    id: int
    user_id: int
    name: str
    created_at: datetime
    created_by: int | None
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: str = Field(description="live / expired / revoked")

    @classmethod
    def of(cls, row: ApiToken, now: datetime) -> TokenPublic:
        return cls.model_validate({**row.model_dump(), "state": token_state(row, now)})


class TokenCreated(TokenPublic):
    token: str = Field(description="shown once: only its hash is stored")


@router.get("", response_model=list[UserPublic])
def list_users_endpoint(session: SessionDep, _admin: Admin) -> list[UserPublic]:
    return [UserPublic.of(u) for u in list_users(session)]


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user_endpoint(
    body: UserCreate, session: SessionDep, clock: ClockDep, admin: Admin
) -> UserPublic:
    user = create_user(
        session,
        username=body.username,
        role=body.role,
        password=body.password,
        unit_id=body.unit_id,
        display_name=body.display_name,
        phone=body.phone,
        now=clock.now(),
        actor=admin,
    )
    return UserPublic.of(user)


@router.patch("/{user_id}", response_model=UserPublic)
def update_user_endpoint(
    user_id: RecordId, body: UserUpdate, session: SessionDep, clock: ClockDep, admin: Admin
) -> UserPublic:
    """Edit a user (admins only; audited). A role change, a deactivation or a new password
    ends the user's console sessions."""
    user = update_user(session, user_id, actor=admin, now=clock.now(), **body.model_dump())
    return UserPublic.of(user)


@router.get("/{user_id}/tokens", response_model=list[TokenPublic])
def list_tokens_endpoint(
    user_id: RecordId, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> list[TokenPublic]:
    """A user's API tokens, newest first (their owner or an admin)."""
    now = clock.now()
    rows = list_api_tokens(session, actor=user, owner_id=get_user(session, user_id).id)
    return [TokenPublic.of(row, now) for row in rows]


@router.post("/{user_id}/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token_endpoint(
    user_id: RecordId,
    body: TokenCreate,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUser,
) -> TokenCreated:
    """An API token: admins for anyone, others for themselves (an integration account's from
    an admin only). From a console session: a token never creates a token."""
    if request.headers.get("authorization"):
        raise Forbidden(
            "API tokens are created from a console session or with `huifang users tokens "
            "create`, never with another token"
        )
    now = clock.now()
    issued = issue_api_token(
        session, get_user(session, user_id), body.name, now, actor=user,
        lifetime=timedelta(days=body.expires_in_days),
    )  # fmt: skip
    return TokenCreated.model_validate(
        {**TokenPublic.of(issued.row, now).model_dump(), "token": issued.token}
    )


@router.delete("/{user_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token_endpoint(
    user_id: RecordId, token_id: RecordId, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> None:
    """Revoke a token at once (its owner or an admin; audited)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"user {user_id} has no api token {token_id}")
    revoke_api_token(session, token_id, actor=user, now=clock.now())


@router.post("/{user_id}/sessions/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_sessions_endpoint(
    user_id: RecordId, session: SessionDep, clock: ClockDep, admin: Admin
) -> None:
    """End all console sessions of a user and revoke their API tokens (admins only; audited)."""
    end_sessions(session, get_user(session, user_id), clock.now(), actor=admin)
