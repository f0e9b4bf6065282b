"""Every timestamp of a database checked against a moment: what a run wrote later than it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, SQLModel

from huifang.domain.types import UTCDateTime

#: columns that hold a moment planned or promised, not one that happened: a call due
#: tomorrow, a deadline, a lease — a real database has them ahead of now as well
AHEAD = {
    ("call_attempts", "due_at"),
    ("call_attempts", "lease_until"),
    ("contacts", "next_due_at"),
    ("escalations", "sla_due_at"),
    ("escalations", "claim_until"),
    ("escalations", "retry_after"),
    ("tickets", "deadline_at"),
    ("notifications", "deadline_at"),
    ("extension_requests", "requested_deadline"),
}


def timestamp_columns() -> list[tuple[str, str]]:
    """(table, column) of every timestamp in the schema."""
    return [
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    ]


def later_than(session: Session, moment: datetime) -> list[tuple[str, str, datetime]]:
    """(table, column, value) of every recorded moment after `moment`, deadlines aside."""
    columns = timestamp_columns()
    assert AHEAD <= set(columns), "a planned-moment column was renamed: update AHEAD"
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, UTCDateTime) or (table.name, column.name) in AHEAD:
                continue
            latest = session.execute(select(column).where(column > moment).limit(1)).first()
            if latest is not None:
                found.append((table.name, column.name, latest[0]))
    return found
