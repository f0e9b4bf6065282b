"""The unit hierarchy over HTTP: everyone logged in reads it; admins add, edit and move units
(a unit sits below its parent's level; `huifang.domain.units` keeps the rules)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from huifang.api.auth import CurrentUser, require_roles
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import MAX_ID, DomainRoute, RecordId
from huifang.domain.models import Unit, User
from huifang.domain.units import KEEP, LEVELS, add_unit, edit_unit, get_unit, list_units
from huifang.domain.users import Role
from huifang.phones import normalize_phone

router = APIRouter(prefix="/units", tags=["units"], route_class=DomainRoute)


class UnitPublic(BaseModel):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    path: str
    duty_phone: str = Field(description="notices of its tickets go there by SMS")


class UnitCreate(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    level: str = Field(description=" / ".join(LEVELS), pattern="^(" + "|".join(LEVELS) + ")$")
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class UnitUpdate(BaseModel):
    """Only the fields given change; `"parent_id": null` moves the unit to the top."""

    code: str | None = Field(default=None, min_length=1, max_length=32)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    level: str | None = Field(
        default=None, description=" / ".join(LEVELS), pattern="^(" + "|".join(LEVELS) + ")$"
    )
    parent_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="move under this unit (null: to the top)"
    )
    duty_phone: str | None = Field(
        default=None, max_length=32, description='its duty phone ("": none)'
    )


def _public(unit: Unit) -> UnitPublic:
    return UnitPublic.model_validate(unit, from_attributes=True)


@router.get("", response_model=list[UnitPublic])
def list_endpoint(session: SessionDep, _user: CurrentUser) -> list[UnitPublic]:
    return [_public(u) for u in list_units(session)]


@router.post("", response_model=UnitPublic, status_code=status.HTTP_201_CREATED)
def create_endpoint(
    body: UnitCreate,
    session: SessionDep,
    clock: ClockDep,
    admin: Annotated[User, Depends(require_roles(Role.admin))],
) -> UnitPublic:
    parent = get_unit(session, body.parent_id) if body.parent_id is not None else None
    unit = add_unit(
        session, code=body.code, name=body.name, level=body.level, parent=parent, actor=admin,
        now=clock.now(),
    )  # fmt: skip
    return _public(unit)


@router.patch("/{unit_id}", response_model=UnitPublic)
def update_endpoint(
    unit_id: RecordId,
    body: UnitUpdate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    admin: Annotated[User, Depends(require_roles(Role.admin))],
) -> UnitPublic:
    """Rename, recode, relevel or move a unit with its subtree; audited as `unit.update`."""
    parent: Unit | None | object = KEEP
    if "parent_id" in body.model_fields_set:
        parent = get_unit(session, body.parent_id) if body.parent_id is not None else None
    phone = body.duty_phone
    if phone:
        phone = normalize_phone(phone, settings.phone_region)
    unit = edit_unit(
        session, unit_id, actor=admin, now=clock.now(), code=body.code, name=body.name,
        level=body.level, parent=parent, duty_phone=phone,
    )  # fmt: skip
    return _public(unit)
