"""Factories for test records: sensible defaults, override what the test is about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from huifang.domain.models import Incident, Unit
from huifang.domain.units import create_unit

_serial = itertools.count(1)
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


def make_unit(session: Session, *, code: str | None = None, name: str | None = None,
              level: str = "station", parent: Unit | None = None) -> Unit:  # fmt: skip
    n = next(_serial)
    return create_unit(
        session, code=code or f"U{n:04d}", name=name or f"第{n}派出所", level=level, parent=parent
    )


def make_incident(session: Session, *, unit: Unit | None = None, **overrides: Any) -> Incident:
    n = next(_serial)
    unit = unit or make_unit(session)
    values: dict[str, Any] = {
        "source": "110",
        "external_id": f"110-{n:07d}",
        "occurred_at": T0 - timedelta(hours=2),
        "handled_at": T0 - timedelta(hours=1),
        "caller_phone": f"+86138{n:08d}",
        "caller_name": "王伟",
        "unit_id": unit.id,
        "officer": "李警官",
        "category": "求助",
        "summary": "群众求助，民警到场处置。",
        "imported_at": T0,
    }
    values.update(overrides)
    incident = Incident(**values)
    session.add(incident)
    session.flush()
    return incident
