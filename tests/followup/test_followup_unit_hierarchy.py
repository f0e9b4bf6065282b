"""The unit hierarchy's rules: a unit sits below its parent's level, never moves into its own
subtree, and a move carries its subtree along (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.clock import FakeClock
from huifang.domain.models import AuditEvent
from huifang.domain.units import add_unit, edit_unit, subtree_ids
from tests.followup.conftest import Staff


def test_a_station_cannot_be_added_under_a_station(
    session: Session, staff: Staff, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="parent_id: a station cannot sit under the station"):
        add_unit(
            session, code="X1", name="新所", level="station", parent=staff.station,
            actor=staff.admin, now=clock.now(),
        )  # fmt: skip


def test_a_moved_branch_takes_its_stations_along(
    session: Session, staff: Staff, clock: FakeClock
) -> None:
    new_bureau = add_unit(
        session, code="NB", name="新市局", level="bureau", parent=None, actor=staff.admin,
        now=clock.now(),
    )  # fmt: skip
    assert staff.branch.id is not None and staff.station.id is not None
    edit_unit(session, staff.branch.id, actor=staff.admin, now=clock.now(), parent=new_bureau)
    session.refresh(staff.station)
    assert staff.station.path == f"{new_bureau.path}{staff.branch.id}/{staff.station.id}/"
    assert set(subtree_ids(session, new_bureau)) == {
        new_bureau.id, staff.branch.id, staff.station.id
    }  # fmt: skip
    assert staff.station.id not in subtree_ids(session, staff.bureau)


def test_a_unit_cannot_move_into_its_own_subtree(
    session: Session, staff: Staff, clock: FakeClock
) -> None:
    assert staff.bureau.id is not None
    with pytest.raises(ValueError, match="parent_id: .*own subtree|parent_id: a bureau"):
        edit_unit(session, staff.bureau.id, actor=staff.admin, now=clock.now(), parent=staff.branch)


def test_a_branch_with_stations_cannot_become_a_station(
    session: Session, staff: Staff, clock: FakeClock
) -> None:
    assert staff.branch.id is not None
    with pytest.raises(ValueError, match="level: .* has units below it"):
        edit_unit(session, staff.branch.id, actor=staff.admin, now=clock.now(), level="station")


def test_a_rename_is_audited_with_what_changed(
    session: Session, staff: Staff, clock: FakeClock
) -> None:
    assert staff.station.id is not None
    edit_unit(session, staff.station.id, actor=staff.admin, now=clock.now(), name="东门新所")
    event = session.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "unit.update")
    ).scalar_one()
    assert event.detail == {"name": "东门新所"}
