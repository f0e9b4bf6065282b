"""A trunk's channels, shared by every worker on every host: the SQL of channel leases.

An N-channel trunk is N rows of `trunk_slots` (slots 1..N). A worker leases slots before it
places calls, in the transaction that moves those attempts to `dialing`, and gives each back
once its call has ended; while it holds any it renews them (a heartbeat). Rules kept here:
- a slot has at most one holder: a slot is taken with `SELECT … FOR UPDATE SKIP LOCKED`
  on PostgreSQL (workers never wait for each other, and never take the same slot), and on
  SQLite, where a write transaction holds the whole database, by the same guarded UPDATE;
- a lease that is not renewed lapses at `expires_at`: a dead worker's channels are free
  again after at most the lease time, and another worker takes them;
- a worker never takes back a lapsed slot whose call it still carries (`carrying`), and
  renews or gives back only the slots it holds; a slot it let lapse on purpose (a call whose
  fate it lost) is free to anyone after the lease, itself included;
- only slots 1..channels of the trunk are taken: every worker of a trunk must be given the
  same channel count (they share the settings file).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from huifang.db import locked_batch
from huifang.domain.models import TrunkSlot

S = TrunkSlot


def ensure_slots(session: Session, trunk: str, channels: int) -> None:
    """Create slots 1..`channels` of `trunk` that do not exist yet (any worker may, at once)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(S)
        .values([{"trunk": trunk, "slot": n, "holder": ""} for n in range(1, channels + 1)])
        .on_conflict_do_nothing()
    )


def acquire(
    session: Session,
    trunk: str,
    *,
    channels: int,
    worker: str,
    now: datetime,
    until: datetime,
    want: int,
    carrying: Collection[int] = (),
) -> list[int]:
    """Lease up to `want` free slots of `trunk` to `worker` until `until`: the slots taken.
    `carrying`: the slots of `worker`'s calls still up (never taken again, even lapsed)."""
    if want <= 0:
        return []
    lapsed = col(S.expires_at) < now
    if carrying:
        lapsed = and_(lapsed, or_(col(S.holder) != worker, col(S.slot).not_in(list(carrying))))
    free = locked_batch(
        session,
        select(col(S.slot))
        .where(col(S.trunk) == trunk)
        .where(col(S.slot) <= channels)
        .where(or_(col(S.holder) == "", lapsed))
        .order_by(col(S.slot))
        .limit(want),
        "free_slots",
    )
    taken = session.execute(
        update(S)
        .where(col(S.trunk) == trunk)
        .where(col(S.slot) == free.c.slot)
        .values(holder=worker, expires_at=until)
        .returning(col(S.slot))
        .execution_options(synchronize_session=False)
    ).scalars()
    return sorted(taken)


def renew(
    session: Session, trunk: str, slots: Collection[int], *, worker: str, until: datetime
) -> set[int]:
    """Extend `worker`'s lease of `slots` to `until`: the slots it still held."""
    if not slots:
        return set()
    return set(
        session.execute(
            update(S)
            .where(col(S.trunk) == trunk)
            .where(col(S.slot).in_(list(slots)))
            .where(col(S.holder) == worker)
            .values(expires_at=until)
            .returning(col(S.slot))
            .execution_options(synchronize_session=False)
        ).scalars()
    )


def release(session: Session, trunk: str, slots: Collection[int], *, worker: str) -> None:
    """Give back `worker`'s `slots` (a slot another worker took after a lapse stays theirs)."""
    if not slots:
        return
    session.execute(
        update(S)
        .where(col(S.trunk) == trunk)
        .where(col(S.slot).in_(list(slots)))
        .where(col(S.holder) == worker)
        .values(holder="", expires_at=None)
        .execution_options(synchronize_session=False)
    )
