"""`huifang users create` and `huifang users tokens` against a SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.cli import app
from huifang.db import create_db_engine
from huifang.domain.models import User
from huifang.domain.units import create_unit
from huifang.domain.users import login


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIFANG_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str, stdin: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def user_named(home: Path, username: str) -> User | None:
    engine = create_db_engine(f"sqlite:///{home / 'huifang.db'}")
    with Session(engine) as session:
        found = session.exec(select(User).where(User.username == username)).scalars().first()  # type: ignore[call-overload]
    engine.dispose()
    return found


def test_create_admin_with_password_from_stdin(home: Path) -> None:
    code, output = run(
        "users", "create", "root", "--role", "admin", "--password-stdin", stdin="s3cret-pass\n"
    )
    assert code == 0, output
    engine = create_db_engine(f"sqlite:///{home / 'huifang.db'}")
    with Session(engine) as session:
        assert login(session, "root", "s3cret-pass", datetime.now(UTC)).role == "admin"
    engine.dispose()


def test_supervisor_gets_the_unit_by_code(home: Path) -> None:
    run("users", "create", "root", "--role", "admin", "--password-stdin", stdin="s3cret-pass\n")
    engine = create_db_engine(f"sqlite:///{home / 'huifang.db'}")
    with Session(engine) as session:
        unit = create_unit(session, code="S9", name="九号所", level="station")
        session.commit()
        unit_id = unit.id
    engine.dispose()
    code, output = run(
        "users",
        "create",
        "chief",
        "--role",
        "supervisor",
        "--unit",
        "S9",
        "--password-stdin",
        stdin="s3cret-pass\n",
    )
    assert code == 0, output
    assert user_named(home, "chief").unit_id == unit_id  # type: ignore[union-attr]


def test_supervisor_without_a_unit_is_refused(home: Path) -> None:
    code, output = run(
        "users",
        "create",
        "chief",
        "--role",
        "supervisor",
        "--password-stdin",
        stdin="s3cret-pass\n",
    )
    assert code == 1 and "unit_id" in output


def test_unknown_role_is_refused(home: Path) -> None:
    code, output = run("users", "create", "x", "--role", "boss", "--no-password")
    assert code == 1 and "--role" in output


def test_short_password_is_refused(home: Path) -> None:
    code, output = run(
        "users", "create", "x", "--role", "agent", "--password-stdin", stdin="short\n"
    )
    assert code == 1 and "password" in output
    assert user_named(home, "x") is None


def test_token_is_printed_once_for_an_integration(home: Path) -> None:
    run("users", "create", "cad", "--role", "integration", "--no-password")
    code, output = run("users", "tokens", "create", "cad", "--name", "cad-import")
    assert code == 0 and output.startswith("hf_")
