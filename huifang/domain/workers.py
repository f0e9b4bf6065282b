"""Signs of life of the dialer workers: each sweep of a worker writes its heartbeat, and the
console asks whether one was seen lately before it lets an admin think calls will go out."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.domain.models import WorkerHeartbeat

#: a worker sweeps every minute: three missed sweeps and it is taken for stopped
SILENT_AFTER = timedelta(minutes=3)


def beat(session: Session, name: str, now: datetime) -> None:
    """Record that the worker `name` is alive at `now`."""
    row = session.get(WorkerHeartbeat, name)
    if row is None:
        session.add(WorkerHeartbeat(name=name[:64], seen_at=now))
    else:
        row.seen_at = now
    session.flush()


def last_seen(session: Session) -> datetime | None:
    """When a worker was last seen alive, if ever."""
    seen: datetime | None = session.execute(
        select(func.max(col(WorkerHeartbeat.seen_at)))
    ).scalar_one()
    return seen


def worker_running(session: Session, now: datetime) -> bool:
    seen = last_seen(session)
    return seen is not None and now - seen < SILENT_AFTER
