"""API test fixtures: an app on a fresh database, users of every role, logged-in clients."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.app import create_app
from huifang.api.auth import SESSION_COOKIE, _serializer
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.api_tokens import create_api_token
from huifang.domain.models import Unit, User
from huifang.domain.units import create_unit
from huifang.domain.users import Role
from huifang.settings import Settings
from tests.factories import hashed_password

PASSWORD = "correct horse battery"


@dataclass
class World:
    bureau: Unit
    branch: Unit
    station: Unit
    other_station: Unit
    users: dict[str, User]


@pytest.fixture
def world(engine: Engine, clock: FakeClock) -> World:
    """A bureau → branch → two stations, and one user per role (supervisor of `branch`)."""
    with Session(engine, expire_on_commit=False) as session:
        bureau = create_unit(session, code="B", name="市局", level="bureau")
        branch = create_unit(session, code="BR1", name="东区分局", level="branch", parent=bureau)
        station = create_unit(session, code="S1", name="东门派出所", level="station", parent=branch)
        other_branch = create_unit(
            session, code="BR2", name="西区分局", level="branch", parent=bureau
        )
        other = create_unit(
            session, code="S2", name="西门派出所", level="station", parent=other_branch
        )
        users = {}
        for name, role, unit in [
            ("admin", Role.admin, None),
            ("agent", Role.agent, None),
            ("agent2", Role.agent, None),
            ("supervisor", Role.supervisor, branch),
            ("other_supervisor", Role.supervisor, other),
            ("inspector", Role.inspector, None),
            ("integration", Role.integration, None),
        ]:
            user = User(
                username=name,
                role=role.value,
                unit_id=unit.id if unit else None,
                password_hash=hashed_password(PASSWORD),
                phone="+8613900000001",
                created_at=clock.now(),
            )
            session.add(user)
            users[name] = user
        session.commit()
    return World(bureau, branch, station, other, users)


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    """SQLite only: these tests are about HTTP; tests/followup runs the services on both."""
    return sqlite_engine


@pytest.fixture
def runtime(engine: Engine, settings: Settings, clock: FakeClock) -> Iterator[Runtime]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    yield Runtime(settings=settings, engine=engine, clock=clock)


@pytest.fixture
def app_client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


@pytest.fixture
def login_as(runtime: Runtime, world: World) -> Iterator[Callable[[str], TestClient]]:
    """A function returning a fresh client with that user's session cookie and CSRF header.

    The cookie is signed directly (test_api_auth covers the password login itself), which
    spares an argon2 verification per client.
    """
    clients: list[TestClient] = []

    def login(username: str) -> TestClient:
        client = TestClient(create_app(runtime))
        clients.append(client)
        csrf = secrets.token_urlsafe(8)
        cookie = _serializer(runtime).dumps({"uid": world.users[username].id, "csrf": csrf})
        client.cookies.set(SESSION_COOKIE, cookie)
        client.headers["X-CSRF-Token"] = csrf
        return client

    yield login
    for client in clients:
        client.close()


@pytest.fixture
def bearer_for(engine: Engine, clock: FakeClock, world: World) -> Callable[[str], dict[str, str]]:
    """A function returning `Authorization` headers with a new API token for that user."""

    def bearer(username: str) -> dict[str, str]:
        with Session(engine, expire_on_commit=False) as session:
            token = create_api_token(session, world.users[username], "test", clock.now())
            session.commit()
        return {"Authorization": f"Bearer {token}"}

    return bearer
