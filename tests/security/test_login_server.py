"""Item 3 against a real `huifang serve`: simultaneous logins never check more passwords
than the limits allow, with one process on SQLite and with `--workers 2` on PostgreSQL.

The account is created with `huifang users create … --password-stdin`, as the README says;
the requests are real parallel HTTP requests; what was checked is read from the audit log
(every checked wrong password is a `login.failed` event).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.security.server import HUIFANG, Server, running_server

PASSWORD = "correct horse battery"


def _create_account(env: dict[str, str], username: str) -> None:
    subprocess.run(
        [str(HUIFANG), "users", "create", username, "--role", "agent", "--password-stdin"],
        input=f"{PASSWORD}\n".encode(), env={**os.environ, **env}, check=True,
        capture_output=True,
    )  # fmt: skip


@contextmanager
def _served(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Server, Engine]]:
    env = {"HUIFANG_DATA_DIR": str(tmp_path / "data")}
    workers = 1
    if kind == "postgres":
        request.getfixturevalue("postgres_engine")  # an emptied database of this run
        env["HUIFANG_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        workers = 2
        url = env["HUIFANG_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{tmp_path / 'data' / 'huifang.db'}"
    with running_server(tmp_path / "data", env, workers=workers) as server:
        _create_account(env, "agent")
        engine = create_engine(url)
        try:
            yield server, engine
        finally:
            engine.dispose()


async def _logins(server: Server, attempts: list[tuple[str, str]]) -> list[int]:
    """All the attempts at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(attempts))
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
        replies = await asyncio.gather(
            *(
                client.post("/api/v1/auth/login", json={"username": u, "password": p})
                for u, p in attempts
            )
        )
    return [reply.status_code for reply in replies]


def _failed_logins(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM audit_events WHERE action = 'login.failed'")
            ).scalar_one()
        )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_25_simultaneous_logins_for_one_account_check_at_most_5_passwords(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # 19 wrong passwords, the right one 20th, 5 more wrong: all sent at the same instant
    attempts = (
        [("agent", "wrong password")] * 19 + [("agent", PASSWORD)] + [("agent", "nope nope")] * 5
    )
    with _served(kind, tmp_path, request) as (server, engine):
        statuses = asyncio.run(_logins(server, attempts))
        checked = _failed_logins(engine)
    assert sorted(set(statuses)) in ([401, 429], [200, 401, 429])
    # at most 5 wrong passwords checked; the right one is checked too when it comes among
    # the first reserved (the order of simultaneous requests is the network's)
    assert statuses.count(401) <= 5 and statuses.count(200) <= 1
    assert statuses.count(429) >= 20
    assert checked <= 5


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_100_simultaneous_logins_from_one_address_check_at_most_30_passwords(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    attempts = [(f"guess{n}", "wrong password") for n in range(100)]
    with _served(kind, tmp_path, request) as (server, engine):
        statuses = asyncio.run(_logins(server, attempts))
        checked = _failed_logins(engine)
    assert statuses.count(401) == checked <= 30
    assert statuses.count(429) >= 70
