"""Console fixtures: the app served by uvicorn in a background thread on a free loopback port,
on a SQLite database seeded with the statistics data set, one user per role and one fresh
complaint waiting in the queue; headless Chromium driven by Playwright; screenshots.

The server and the browser live for the module (starting them is the slow part); each test
gets a fresh browser context, so cookies never leak between roles. Page tests without a
browser use `client` (the app in-process on a fresh database, an admin and an agent) and
`logged_in`.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import create_db_engine
from huifang.domain.models import Answer, CallAttempt, Contact, Recording, User
from huifang.followup.escalations import escalate
from huifang.settings import Settings
from tests.factories import hashed_password, make_incident
from tests.stats.stats_dataset import Dataset, build_dataset

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "console-password-1"
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ROLES = ("admin", "agent", "supervisor", "inspector")


@dataclass
class Site:
    url: str
    engine: Engine
    data: Dataset
    #: the complaint seeded for the agent: escalation id
    complaint_id: int
    users: dict[str, User]


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _silence_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000)


def _seed(session: Session, data_dir: Path) -> tuple[Dataset, int, dict[str, User]]:
    data = build_dataset(session)
    users = {}
    password_hash = hashed_password(PASSWORD)
    for role in ROLES:
        users[role] = User(
            username=role, display_name=f"{role}-测试", role=role, password_hash=password_hash,
            unit_id=data.east.id if role == "supervisor" else None,
            phone="+8613900000001" if role == "agent" else "", created_at=NOW,
        )  # fmt: skip
        session.add(users[role])
    incident = make_incident(
        session, unit=data.s1, handled_at=NOW - timedelta(hours=20), caller_name="张敏",
        caller_phone="+8613812345678", category="纠纷", summary="邻里纠纷，民警到场调解。",
    )  # fmt: skip
    contact = Contact(
        campaign_id=1, incident_id=incident.id, phone=incident.caller_phone, state="answered"
    )
    session.add(contact)
    session.flush()
    attempt = CallAttempt(
        contact_id=contact.id, campaign_id=1, state="completed", due_at=NOW, created_at=NOW
    )
    session.add(attempt)
    session.flush()
    audio = data_dir / "recordings" / "complaint.wav"
    _silence_wav(audio)
    recording = Recording(
        attempt_id=attempt.id, path=str(audio), duration_seconds=1.0,
        transcript="民警 态度 很 差 到 了 也 不 管", created_at=NOW,
    )  # fmt: skip
    session.add(recording)
    session.flush()
    for question, dimension, outcome in [
        ("attitude", "attitude", "unsatisfied"), ("overall", "overall", "unsatisfied"),
    ]:  # fmt: skip
        session.add(
            Answer(
                contact_id=contact.id,
                incident_id=incident.id,
                attempt_id=attempt.id,
                question_id=question,
                dimension=dimension,
                outcome=outcome,
                value="3",
                mode="dtmf",
                created_at=NOW - timedelta(hours=2),
            )  # fmt: skip
        )
    complaint = escalate(
        session, incident_id=incident.id, origin="voice", now=NOW - timedelta(hours=2),
        sla_hours=24, contact_id=contact.id, attempt_id=attempt.id,
        summary="民警态度很差，到了也不管", categories=("attitude",),
    )  # fmt: skip
    session.commit()
    return data, complaint.id, users  # type: ignore[return-value]


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("console")
    shutil.copy(sqlite_template, root / "huifang.db")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'huifang.db'}")
    engine = create_db_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        data, complaint_id, users = _seed(session, settings.data_dir)
    runtime = Runtime(settings=settings, engine=engine, clock=FakeClock(NOW))
    import uvicorn

    sock = _free_socket()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{sock.getsockname()[1]}", engine, data, complaint_id, users)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the console tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def login(browser: Any, site: Site) -> Iterator[Callable[[str], Any]]:
    """`login("agent")`: a new page in a fresh context, logged in as that role."""
    contexts: list[Any] = []

    def as_role(role: str, lang: str = "zh-CN") -> Any:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=lang)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{site.url}/login?lang={lang}")
        page.fill("input[name=username]", role)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        return page

    yield as_role
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# --- without a browser: the app in-process, an admin and an agent


@pytest.fixture
def client(sqlite_engine: Engine, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    with Session(sqlite_engine) as session:
        password_hash = hashed_password(PASSWORD)
        for role in ("admin", "agent"):
            session.add(
                User(username=role, role=role, password_hash=password_hash, created_at=clock.now())
            )
        session.commit()
    runtime = Runtime(settings=settings, engine=sqlite_engine, clock=clock)
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def logged_in(client: TestClient) -> Callable[[str], str]:
    """Log the client in as `username`; returns the page's CSRF token."""

    def as_user(username: str) -> str:
        reply = client.post("/login", data={"username": username, "password": PASSWORD})
        assert reply.status_code == 303, reply.text
        page = client.get("/scripts/edit" if username == "admin" else "/queue").text
        return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    return as_user
