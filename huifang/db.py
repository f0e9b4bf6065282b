"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

SQLite serves one machine: WAL journal, foreign keys on, a generous busy timeout so the
API and one worker can share the file. PostgreSQL serves many workers and replicas.
Nothing is created at import time; `bootstrap` asks for an engine from settings.

A unit of work that meets a transient error (a dropped or killed connection, a
serialization failure, SQLite's busy file) may be run again through `retry_transient`:
bounded tries with growing waits, the last error raised.

Files follow the transaction that records them: a file written for a transaction that rolls
back is removed (`remove_on_rollback`), and a file a transaction forgets is removed only
once that transaction committed (`remove_after_commit`), so a failure never leaves a row
without its file nor a file without its row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import CTE, Engine, Select, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: seconds waited before each new try of work that met a transient error (6 tries in ~4 s)
RETRY_DELAYS = (0.05, 0.15, 0.3, 0.6, 1.2, 2.0)
T = TypeVar("T")
log = logging.getLogger(__name__)
_ON_ROLLBACK = "huifang.remove_on_rollback"
_AFTER_COMMIT = "huifang.remove_after_commit"
#: PostgreSQL connections a process keeps open, and how many more it may open in a burst
POOL_SIZE = 10
POOL_OVERFLOW = 20
#: threads a process runs PostgreSQL work in (`Runtime.run_db`): one per connection it may
#: hold, so no work waits for a thread while a connection is free, nor for a connection
#: while it holds a thread
DB_THREADS = POOL_SIZE + POOL_OVERFLOW


def _json_text(value: Any) -> str:
    """JSON columns as text a person can read in any database tool (and search): Chinese as
    written, not as `\\uXXXX` escapes."""
    return json.dumps(value, ensure_ascii=False)


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", _json_text)
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, **kwargs
    )


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def locked_batch(session: Session, picked: Select[Any], name: str) -> CTE:
    """`picked` (a SELECT … LIMIT k) as a CTE evaluated once, its rows locked with
    `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite holds the whole database while it
    writes): an `UPDATE … FROM` it touches at most k rows, each row no other transaction
    holds. Never `UPDATE … WHERE id IN (SELECT … LIMIT k FOR UPDATE SKIP LOCKED)`: a nested
    loop may run that subquery once per outer row, each run locking k more rows."""
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    return picked.cte(name).prefix_with("MATERIALIZED")


def is_transient(exc: BaseException) -> bool:
    """A database error a new try may not meet: the connection was dropped or killed
    (`connection_invalidated`), or the driver calls it operational — PostgreSQL's
    serialization failures, deadlocks and administrator terminations, SQLite's busy file."""
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError)


def retry_transient(
    work: Callable[[int], T],
    *,
    what: str,
    delays: Sequence[float] = RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`work(try_number)` (1 first) until it returns; after a transient error wait the next
    of `delays` and try again, at most `len(delays) + 1` times, then raise the last error.
    Other errors are raised at once.

    `work` is one whole transaction, safe to run again. A connection can drop after the
    server committed and before the client heard: from its second try on, `work` must find
    out whether an earlier try landed (a guarded write finds nothing to move; a log appended
    under compare-and-set finds its entry) rather than apply it twice."""
    for number, delay in enumerate(delays, start=1):
        try:
            return work(number)
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "%s: transient database error on try %d (%s); trying again in %.2f s",
                what, number, type(exc.orig).__name__, delay,
            )  # fmt: skip
        sleep(delay)
    return work(len(delays) + 1)


def remove_on_rollback(session: Session, path: Path) -> None:
    """`path` was written for this transaction: remove it if the transaction rolls back."""
    session.info.setdefault(_ON_ROLLBACK, []).append(path)


def remove_after_commit(session: Session, path: Path) -> None:
    """This transaction forgets `path`: remove the file once the transaction committed."""
    session.info.setdefault(_AFTER_COMMIT, []).append(path)


@event.listens_for(Session, "after_commit")
def _files_after_commit(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    for path in session.info.pop(_AFTER_COMMIT, []):
        path.unlink(missing_ok=True)


@event.listens_for(Session, "after_rollback")
def _files_after_rollback(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    for path in session.info.pop(_ON_ROLLBACK, []):
        path.unlink(missing_ok=True)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (the same migrations on SQLite and PostgreSQL).

    Every process starts by this; a connection dropped under it must not kill a worker at
    start-up, and alembic runs each migration in a transaction, so a retry is safe."""
    config = alembic_config(engine)
    retry_transient(lambda _try: command.upgrade(config, revision), what="applying migrations")


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)
