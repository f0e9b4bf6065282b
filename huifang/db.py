"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

SQLite serves one machine: WAL journal, foreign keys on, a generous busy timeout so the
API and one worker can share the file. PostgreSQL serves many workers and replicas.
Nothing is created at import time; `bootstrap` asks for an engine from settings.

Files follow the transaction that records them: a file written for a transaction that rolls
back is removed (`remove_on_rollback`), and a file a transaction forgets is removed only
once that transaction committed (`remove_after_commit`), so a failure never leaves a row
without its file nor a file without its row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_ON_ROLLBACK = "huifang.remove_on_rollback"
_AFTER_COMMIT = "huifang.remove_after_commit"


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


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
    """Apply migrations up to `revision` (the same migrations on SQLite and PostgreSQL)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)
