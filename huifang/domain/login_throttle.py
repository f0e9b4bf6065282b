"""Login attempts limited in the database, reserved before the password is checked.

Three limits, each a row counted in a fixed window:
- an account at one client address (`login_max_failures`, 5 per 15 minutes): stops a
  guesser without locking the account's owner out from elsewhere;
- an account from any address (`login_account_max_failures`, 30 per 15 minutes): the slower
  account-wide back-off against guessing spread over many addresses;
- a client address on any account (`login_address_max_failures`, 30 per 10 minutes): one
  address may not try many accounts.

Rules kept here:
- an attempt reserves its place in all three before its password is checked, in one short
  transaction of its own committed at once: guarded `UPDATE … WHERE attempts < :max`, so
  twenty-five logins at the same instant check at most five passwords, across threads,
  processes (`huifang serve --workers N`) and hosts sharing the database;
- a full row refuses the attempt (LoginRateLimited, with how long until its window ends)
  and the attempt takes no place in the others;
- a successful login gives its places back (an account's own address starts over), so
  only failures stay counted; a process killed mid-check leaves its place taken;
- rows are locked in key order, so two logins never deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from huifang.domain.models import LoginThrottle
from huifang.domain.types import UTCDateTime
from huifang.domain.users import LoginRateLimited
from huifang.settings import Settings


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    max_attempts: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account_at_address: int
    per_account: int
    account_window: timedelta
    per_address: int
    address_window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_account_at_address=settings.login_max_failures,
            per_account=settings.login_account_max_failures,
            account_window=timedelta(seconds=settings.login_failure_window_seconds),
            per_address=settings.login_address_max_failures,
            address_window=timedelta(seconds=settings.login_address_window_seconds),
        )

    def for_attempt(self, username: str, address: str) -> list[Limit]:
        """The limits one attempt counts against, in key order (the locking order)."""
        account = username.strip()[:64]
        return sorted(
            [
                Limit(
                    f"pair:{account}|{address}", self.per_account_at_address, self.account_window
                ),
                Limit(f"account:{account}", self.per_account, self.account_window),
                Limit(f"address:{address}", self.per_address, self.address_window),
            ],
            key=lambda limit: limit.key,
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    """The places one attempt holds: given back by `release` if it succeeds."""

    limits: tuple[Limit, ...]
    at: datetime


def reserve(
    engine: Engine, limits: LoginLimits, username: str, address: str, now: datetime
) -> Reservation:
    """Take this attempt's place in every limit, committed before returning; raises
    LoginRateLimited (and takes no place) when one of them is full."""
    wanted = limits.for_attempt(username, address)
    with Session(engine) as session:
        for limit in wanted:
            horizon = now - limit.window
            _ensure_row(session, limit.key, now)
            row = LoginThrottle.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
            expired = row.c.window_start <= horizon
            taken = session.exec(
                update(row)
                .where(row.c.key == limit.key)
                .where(or_(expired, row.c.attempts < limit.max_attempts))
                .values(
                    attempts=case((expired, 1), else_=row.c.attempts + 1),
                    window_start=case(
                        (expired, literal(now, UTCDateTime())), else_=row.c.window_start
                    ),
                )
            )
            if taken.rowcount != 1:
                started = session.execute(
                    select(col(LoginThrottle.window_start)).where(
                        col(LoginThrottle.key) == limit.key
                    )
                ).scalar_one()
                session.rollback()
                raise LoginRateLimited(max(started + limit.window - now, timedelta(seconds=1)))
        session.commit()
    return Reservation(tuple(wanted), now)


def release(session: Session, reservation: Reservation) -> None:
    """A successful login: give back its places (in the caller's transaction); the account
    at this address starts over."""
    for limit in reservation.limits:
        row = LoginThrottle.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
        same_window = and_(
            row.c.key == limit.key, row.c.window_start > reservation.at - limit.window
        )
        if limit.key.startswith("pair:"):
            session.execute(update(row).where(same_window).values(attempts=0))
        else:
            session.execute(
                update(row)
                .where(same_window, row.c.attempts > 0)
                .values(attempts=row.c.attempts - 1)
            )


def forget_expired(session: Session, now: datetime, longest_window: timedelta) -> int:
    """Delete rows whose window ended long ago (housekeeping); how many."""
    gone = session.exec(
        delete(LoginThrottle).where(col(LoginThrottle.window_start) < now - longest_window)
    )
    return int(gone.rowcount or 0)


def _ensure_row(session: Session, key: str, now: datetime) -> None:
    values = {"key": key, "attempts": 0, "window_start": now - timedelta(days=3650)}
    table = LoginThrottle.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
    if session.get_bind().dialect.name == "postgresql":
        session.execute(postgres_insert(table).values(values).on_conflict_do_nothing())
    else:
        session.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())
