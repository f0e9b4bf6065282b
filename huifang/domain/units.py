"""The unit hierarchy (city bureau → district branch → station), its edits and subtree queries.

Rules it keeps: a unit sits below its parent's level (no station under a station, no branch
under a station); a unit never moves into its own subtree; a move rewrites the materialised
`path` of the whole subtree in one statement, so subtree queries stay right.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, literal, select, update
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import Unit, User
from huifang.errors import Conflict, NotFound

#: from the top of the hierarchy down: a unit's parent is of a level before its own
LEVELS = ("bureau", "branch", "station")


def check_placement(level: str, parent: Unit | None) -> None:
    """Refuse a level that is not one, or a unit placed under a unit not above its level."""
    if level not in LEVELS:
        raise ValueError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    if parent is not None and LEVELS.index(parent.level) >= LEVELS.index(level):
        above = ", ".join(LEVELS[: LEVELS.index(level)]) or "none: a bureau is at the top"
        raise ValueError(
            f"parent_id: a {level} cannot sit under the {parent.level} {parent.name!r}: "
            f"choose a parent of a level above it ({above})"
        )


def create_unit(
    session: Session, *, code: str, name: str, level: str, parent: Unit | None = None
) -> Unit:
    check_placement(level, parent)
    if session.execute(select(Unit).where(col(Unit.code) == code)).first():
        raise Conflict(f"code: a unit with code {code!r} exists already")
    unit = Unit(code=code, name=name, level=level, parent_id=parent.id if parent else None)
    session.add(unit)
    session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    session.flush()
    return unit


def add_unit(
    session: Session, *, code: str, name: str, level: str, parent: Unit | None, actor: User | None,
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


#: a parent argument meaning "keep the unit where it is"
KEEP = object()


def edit_unit(
    session: Session, unit_id: int, *, actor: User | None, now: datetime,
    code: str | None = None, name: str | None = None, level: str | None = None,
    parent: Unit | None | object = KEEP, duty_phone: str | None = None,
) -> Unit:  # fmt: skip
    """Rename, recode, relevel or move a unit (`parent=None`: to the top), or set its duty
    phone (already normalised to E.164 by the caller; "" removes it), audited as
    `unit.update` with what changed. Refused, with nothing written, when the unit would sit
    under a unit not above its level, when a child would no longer sit below it, or when it
    would move into its own subtree."""
    unit = get_unit(session, unit_id)
    new_code = unit.code if code is None else code.strip()
    new_name = unit.name if name is None else name.strip()
    new_level = unit.level if level is None else level
    new_parent = (
        (get_unit(session, unit.parent_id) if unit.parent_id is not None else None)
        if parent is KEEP
        else parent
    )
    assert new_parent is None or isinstance(new_parent, Unit)
    if not new_code or len(new_code) > 32:
        raise ValueError("code: 1 to 32 characters")
    if not new_name or len(new_name) > 128:
        raise ValueError("name: 1 to 128 characters")
    check_placement(new_level, new_parent)
    if new_parent is not None and is_within(new_parent, unit):
        raise ValueError(
            f"parent_id: {new_parent.name!r} is {unit.name!r} or below it: a unit cannot move "
            "into its own subtree"
        )
    children_not_below = session.execute(
        select(func.count())
        .where(col(Unit.parent_id) == unit.id)
        .where(col(Unit.level).in_(LEVELS[: LEVELS.index(new_level) + 1]))
    ).one()[0]
    if children_not_below:
        raise ValueError(
            f"level: {unit.name!r} has units below it of level {new_level} or above: move them "
            "first"
        )
    if (
        new_code != unit.code
        and session.execute(select(col(Unit.id)).where(col(Unit.code) == new_code)).first()
    ):
        raise Conflict(f"code: a unit with code {new_code!r} exists already")
    changed = {
        field: value
        for field, value, old in (
            ("code", new_code, unit.code),
            ("name", new_name, unit.name),
            ("level", new_level, unit.level),
            ("parent_id", new_parent.id if new_parent else None, unit.parent_id),
            ("duty_phone", unit.duty_phone if duty_phone is None else duty_phone, unit.duty_phone),
        )  # fmt: skip
        if value != old
    }
    if "parent_id" in changed:
        old_path = unit.path
        new_path = f"{new_parent.path if new_parent else '/'}{unit.id}/"
        # the subtree's paths all start with the old one: swap that prefix in one statement
        session.execute(
            update(Unit)
            .where(col(Unit.path).startswith(old_path))
            .values(path=literal(new_path).concat(func.substr(col(Unit.path), len(old_path) + 1)))
            .execution_options(synchronize_session=False)
        )
    unit.code, unit.name, unit.level = new_code, new_name, new_level
    if duty_phone is not None:
        unit.duty_phone = duty_phone
    unit.parent_id = new_parent.id if new_parent else None
    session.flush()
    session.refresh(unit)
    if changed:
        record_audit(
            session, at=now, actor=actor, action="unit.update", target_type="unit",
            target_id=unit.id, detail=changed,
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
