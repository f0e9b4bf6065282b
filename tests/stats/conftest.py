"""Statistics fixtures: the hand-computed data set, an app on it, readers of each role; a
runtime on the test database and the survey history made on it by the real code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.app import create_app
from huifang.bootstrap import Runtime, build_runtime
from huifang.clock import FakeClock
from huifang.domain.api_tokens import create_api_token
from huifang.domain.models import User
from huifang.settings import Settings
from tests.stats.stats_dataset import Dataset, build_dataset
from tests.stats.survey_history import History, build_history


@pytest.fixture
def data(session: Session) -> Dataset:
    return build_dataset(session)


@pytest.fixture
def stats_client(
    engine: Engine, settings: Settings, clock: FakeClock, data: Dataset
) -> Iterator[Callable[[str], TestClient]]:
    """`client("supervisor")`: a client with a bearer token of a new user of that role (the
    supervisor belongs to 东区分局)."""
    runtime = Runtime(settings=settings, engine=engine, clock=clock)
    client = TestClient(create_app(runtime))

    def as_role(role: str) -> TestClient:
        with Session(engine, expire_on_commit=False) as session:
            unit_id = data.east.id if role == "supervisor" else None
            user = User(
                username=f"{role}-reader", role=role, unit_id=unit_id, created_at=clock.now()
            )
            session.add(user)
            session.flush()
            token = create_api_token(session, user, "stats", clock.now())
            session.commit()
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    yield as_role
    client.close()


@pytest.fixture
def runtime(engine: Engine, clock: FakeClock, tmp_path: Path) -> Runtime:
    settings = Settings(data_dir=tmp_path / "data", calls_per_second=1000)
    return build_runtime(settings, clock=clock, migrate=False, engine=engine)


@pytest.fixture
def history(runtime: Runtime, clock: FakeClock, tmp_path: Path) -> History:
    return asyncio.run(build_history(runtime, clock, tmp_path / "recordings"))
