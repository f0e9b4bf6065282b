"""Follow-up fixtures: a unit tree with a supervisor per branch, agents, an inspector."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session

from huifang.domain.models import Unit, User
from tests.factories import make_unit, make_user


@dataclass
class Staff:
    bureau: Unit
    branch: Unit
    station: Unit
    other_station: Unit
    agent: User
    agent2: User
    supervisor: User  # of `branch` (so of `station` too)
    other_supervisor: User  # of `other_station`
    inspector: User
    admin: User


@pytest.fixture
def staff(session: Session) -> Staff:
    bureau = make_unit(session, level="bureau")
    branch = make_unit(session, level="branch", parent=bureau)
    station = make_unit(session, parent=branch)
    other = make_unit(session, parent=make_unit(session, level="branch", parent=bureau))
    return Staff(
        bureau=bureau,
        branch=branch,
        station=station,
        other_station=other,
        agent=make_user(session, role="agent"),
        agent2=make_user(session, role="agent"),
        supervisor=make_user(session, role="supervisor", unit=branch),
        other_supervisor=make_user(session, role="supervisor", unit=other),
        inspector=make_user(session, role="inspector"),
        admin=make_user(session, role="admin"),
    )
