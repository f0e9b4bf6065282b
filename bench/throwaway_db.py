"""Throwaway PostgreSQL databases for the benchmarks: each run makes one of its own on a
server it is given and drops it afterwards (unless asked to keep it for a later run)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import make_url

from huifang.db import create_db_engine


def create_database(server: str, prefix: str, *, reuse: str = "") -> tuple[str, str]:
    """A new database named `prefix_<random>` on `server` (or the existing `reuse`), planned
    for SSDs (`random_page_cost = 1.1`): its name and URL."""
    name = reuse or f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not reuse:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f'ALTER DATABASE "{name}" SET random_page_cost = 1.1'))
    finally:
        admin.dispose()
    return name, make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    admin = create_db_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def dropper(server: str, name: str) -> Callable[[], None]:
    return lambda: drop_database(server, name)
