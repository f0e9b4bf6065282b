"""`retry_transient`: which database errors are tried again, how often, and with which waits."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from huifang.db import is_transient, retry_transient, upgrade

DROPPED = DBAPIError("SELECT 1", {}, Exception("connection reset"), connection_invalidated=True)
BUSY = OperationalError("UPDATE t", {}, Exception("database is locked"))
DUPLICATE = IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))


class Flaky:
    """Work that fails with `errors` one after another, then returns its try number."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.tries: list[int] = []

    def __call__(self, number: int) -> int:
        self.tries.append(number)
        if self.errors:
            raise self.errors.pop(0)
        return number


@pytest.mark.parametrize(
    ("error", "transient"),
    [(DROPPED, True), (BUSY, True), (DUPLICATE, False), (ValueError("x"), False)],
    ids=["dropped connection", "operational", "integrity", "not a database error"],
)
def test_only_dropped_connections_and_operational_errors_are_transient(
    error: Exception, transient: bool
) -> None:
    assert is_transient(error) is transient


def test_work_is_tried_again_after_each_wait_until_it_succeeds() -> None:
    waits: list[float] = []
    work = Flaky(DROPPED, BUSY)
    assert retry_transient(work, what="t", delays=(0.1, 0.2, 0.4), sleep=waits.append) == 3
    assert (work.tries, waits) == ([1, 2, 3], [0.1, 0.2])


def test_a_lasting_transient_error_is_raised_after_the_last_try() -> None:
    waits: list[float] = []
    work = Flaky(*[BUSY] * 10)
    with pytest.raises(OperationalError):
        retry_transient(work, what="t", delays=(0.1, 0.2), sleep=waits.append)
    assert (work.tries, waits) == ([1, 2, 3], [0.1, 0.2])


def test_other_errors_are_raised_at_once() -> None:
    work = Flaky(DUPLICATE)
    with pytest.raises(IntegrityError):
        retry_transient(work, what="t", delays=(0.1,), sleep=lambda _s: None)
    assert work.tries == [1]


def test_migrating_at_start_up_survives_a_dropped_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every process migrates when it starts: a worker must not die of a connection the
    database dropped under that (seen: `huifang worker` exit 1 on PostgreSQL)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    real_upgrade = command.upgrade
    dropped = Flaky(DROPPED)

    def upgrade_dropping_once(config: Config, revision: str) -> None:
        dropped(0)
        real_upgrade(config, revision)

    monkeypatch.setattr(command, "upgrade", upgrade_dropping_once)
    monkeypatch.setattr("huifang.db.time.sleep", lambda _s: None)
    upgrade(engine)
    assert "incidents" in inspect(engine).get_table_names()
