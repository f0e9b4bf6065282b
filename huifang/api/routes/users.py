"""Accounts over HTTP: admins create and edit users and API tokens; everyone may read
themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from huifang.api.auth import CurrentUser, require_roles
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import MAX_ID, DomainRoute, RecordId
from huifang.domain.models import User
from huifang.domain.users import (
    Role,
    create_api_token,
    create_user,
    end_sessions,
    get_user,
    list_users,
    update_user,
)
from huifang.errors import Forbidden

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
    name: str = Field(min_length=1, max_length=64)


class TokenCreated(BaseModel):
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


@router.post("/{user_id}/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token_endpoint(
    user_id: RecordId, body: TokenCreate, session: SessionDep, clock: ClockDep, user: CurrentUser
) -> TokenCreated:
    """An API token for a user: admins for anyone, others for themselves."""
    if user.role != Role.admin and user.id != user_id:
        raise Forbidden("only an admin creates tokens for another user")
    owner = get_user(session, user_id)
    return TokenCreated(token=create_api_token(session, owner, body.name, clock.now()))


@router.post("/{user_id}/sessions/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_sessions_endpoint(
    user_id: RecordId, session: SessionDep, clock: ClockDep, admin: Admin
) -> None:
    """End all console sessions of a user (admins only; audited). API tokens are unaffected."""
    end_sessions(session, get_user(session, user_id), clock.now(), actor=admin)
