"""The unit hierarchy (city bureau → district branch → station) and its subtree queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import Unit, User
from huifang.errors import Conflict, NotFound

LEVELS = ("bureau", "branch", "station")


def create_unit(
    session: Session, *, code: str, name: str, level: str, parent: Unit | None = None
) -> Unit:
    if level not in LEVELS:
        raise ValueError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    if session.execute(select(Unit).where(col(Unit.code) == code)).first():
        raise Conflict(f"code: a unit with code {code!r} exists already")
    unit = Unit(code=code, name=name, level=level, parent_id=parent.id if parent else None)
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.flush()
    return unit


def add_unit(
    session: Session, *, code: str, name: str, level: str, parent: Unit | None, actor: User,
    now: datetime,
) -> Unit:  # fmt: skip
    """A unit an admin adds (API or console): `create_unit`, audited as `unit.create`."""
    if not code or len(code) > 32:
        raise ValueError("code: 1 to 32 characters")
    if not name or len(name) > 128:
        raise ValueError("name: 1 to 128 characters")
    unit = create_unit(session, code=code, name=name, level=level, parent=parent)
    record_audit(
        session, at=now, actor=actor, action="unit.create", target_type="unit",
        target_id=unit.id, detail={"code": unit.code, "parent_id": unit.parent_id},
    )  # fmt: skip
    return unit


def get_unit(session: Session, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"unit {unit_id} does not exist")
    return unit


def subtree_ids(session: Session, unit: Unit) -> list[int]:
    """The unit and every unit below it."""
    rows = session.execute(select(col(Unit.id)).where(col(Unit.path).startswith(unit.path)))
    return [row[0] for row in rows]


def is_within(unit: Unit, ancestor: Unit) -> bool:
    return unit.path.startswith(ancestor.path)


def list_units(session: Session) -> Sequence[Unit]:
    return session.execute(select(Unit).order_by(col(Unit.path))).scalars().all()
