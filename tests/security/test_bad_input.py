"""Item 8: bad input gets a 4xx naming what is wrong, never a 500; console actions that
changed something without a trace are audited.

The id test walks every route of the app, so a route added later is held to it too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.cli import app as cli
from huifang.domain.scripts import publish_script
from huifang.ivr.script import builtin_scripts_dir
from tests.security.conftest import Login, audit_actions

HUGE_IDS = [2**31, 2**63, 2**70]
IMPORT_HEADER = "source,external_id,occurred_at,handled_at,caller_phone,unit,summary\n"


def _routes_with_int_ids(runtime: Runtime) -> list[tuple[str, str]]:
    """(method, path template) of every route with an integer path parameter."""
    found = []
    for context in iter_route_contexts(create_app(runtime).routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        if any(p.field_info.annotation is int for p in route.dependant.path_params):
            found.extend((method, context.path) for method in sorted(route.methods))
    return found


def _filled(path: str, value: int) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)


@pytest.mark.parametrize("value", HUGE_IDS)
def test_no_route_answers_500_to_an_id_beyond_the_database(
    runtime: Runtime, login_as: Login, value: int
) -> None:
    admin = login_as("admin")
    plain = TestClient(
        create_app(runtime), raise_server_exceptions=False, cookies=admin.cookies,
        headers={**admin.headers, "Accept": "text/html"}, follow_redirects=False,
    )  # fmt: skip
    routes = _routes_with_int_ids(runtime)
    assert len(routes) > 20  # the API's and the console's
    failures = [
        (method, path, status)
        for method, path in routes
        if (status := plain.request(method, _filled(path, value)).status_code) >= 500
    ]
    assert failures == []


@pytest.mark.parametrize(
    "path", ["/static/..%00/etc/passwd", "/static/%00", "/static/" + "a" * 5000]
)
def test_a_strange_static_path_is_404(app_client: TestClient, path: str) -> None:
    assert app_client.get(path).status_code == 404


def test_a_static_path_outside_the_folder_is_404(app_client: TestClient) -> None:
    assert app_client.get("/static/../auth.py").status_code == 404


def _builtin_script(name: str) -> str:
    source = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
    return re.sub(r"(?m)^name: .*$", f"name: {name}", source, count=1)


def test_a_5000_character_script_name_is_refused_naming_the_field(login_as: Login) -> None:
    reply = login_as("admin").post(
        "/scripts/publish", data={"yaml_text": _builtin_script("s" * 5000)}
    )
    assert reply.status_code == 422
    assert "name" in reply.text


def test_a_script_name_of_64_characters_is_published(login_as: Login) -> None:
    reply = login_as("admin").post(
        "/scripts/publish", data={"yaml_text": _builtin_script("s" * 64)}, follow_redirects=False
    )
    assert reply.status_code == 303


@pytest.mark.parametrize("period", ["0001-01", "9999-12", "0001-01-01..0001-01-31", "1909-12"])
def test_a_period_out_of_range_is_422(login_as: Login, period: str) -> None:
    admin = login_as("admin")
    for path in ("/api/v1/stats/summary", "/api/v1/stats/export", "/api/v1/stats/ranking"):
        reply = admin.get(path, params={"period": period})
        assert reply.status_code == 422, (path, reply.text)
        assert "period" in reply.text
    assert admin.get("/dashboard", params={"period": period}).status_code == 422


def _import(client: TestClient, body: bytes, **params: str) -> Any:
    return client.post(
        "/api/v1/incidents/import", params=params, files={"file": ("x.csv", body, "text/csv")}
    )


def _row(summary: str, n: int = 1, unit: str = "S1") -> str:
    return f"110,E{n},2026-11-22 10:00,2026-11-22 11:00,1380000{n:04d},{unit},{summary}\n"


def test_an_import_field_over_the_csv_limit_is_refused_naming_the_line(login_as: Login) -> None:
    body = (IMPORT_HEADER + _row("ok", 1) + _row("长" * 140_000, 2)).encode()
    reply = _import(login_as("admin"), body)
    assert reply.status_code == 422
    assert "line 3" in reply.json()["detail"]


def test_an_import_field_with_a_nul_byte_is_a_bad_row(login_as: Login, engine: Engine) -> None:
    body = (IMPORT_HEADER + _row("a\x00b")).encode()
    reply = _import(login_as("admin"), body)
    assert reply.status_code == 422
    [error] = reply.json()["errors"]
    assert (error["line"], error["column"]) == (2, "summary") and "NUL" in error["reason"]


def test_an_import_in_gbk_is_read_with_its_encoding(login_as: Login) -> None:
    body = (IMPORT_HEADER + _row("邻里纠纷")).encode("gbk")
    assert _import(login_as("admin"), body, encoding="gbk").json()["inserted"] == 1


def _gbk_after_64k(path: Path) -> Path:
    """A CSV for the sample units whose first 64 KiB are plain ASCII and whose last row is
    GBK."""
    rows = "".join(_row("ascii", n, "DC01") for n in range(1, 1500))
    assert len(rows) > 65536
    last = _row("邻里纠纷", 1500, "DC01").encode("gbk")
    path.write_bytes((IMPORT_HEADER + rows).encode() + last)
    return path


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HUIFANG_DATABASE_URL", raising=False)
    CliRunner().invoke(cli, ["sample", "units"])
    return tmp_path


def test_the_cli_names_the_line_of_a_byte_that_is_not_utf8(cli_home: Path) -> None:
    result = CliRunner().invoke(
        cli, ["import", "incidents", str(_gbk_after_64k(cli_home / "gbk.csv"))]
    )
    assert result.exit_code == 1
    assert (
        "the file is not UTF-8 (line 1501); save it as UTF-8 or pass --encoding gbk"
        in result.output
    )


def test_the_cli_reads_it_with_encoding_gbk(cli_home: Path) -> None:
    path = _gbk_after_64k(cli_home / "gbk.csv")
    result = CliRunner().invoke(cli, ["import", "incidents", str(path), "--encoding", "gbk"])
    assert result.exit_code == 0, result.output
    assert "imported 1500 new incidents" in result.output


# --- audited console actions ---------------------------------------------------------------


def test_a_unit_created_in_the_console_is_audited(login_as: Login, engine: Engine) -> None:
    login_as("admin").post("/units", data={"code": "S9", "name": "新站", "level": "station"})
    assert "unit.create" in audit_actions(engine)


def test_a_published_script_is_audited(login_as: Login, engine: Engine) -> None:
    login_as("admin").post("/scripts/publish", data={"yaml_text": _builtin_script("audited")})
    assert "script.publish" in audit_actions(engine)


def test_starting_pausing_and_resuming_a_campaign_are_audited(
    login_as: Login, engine: Engine, world: Any, clock: Any
) -> None:
    with Session(engine) as session:
        version = publish_script(session, _builtin_script("campaign-script"), clock.now())
        session.commit()
        version_id = version.id
    admin = login_as("admin")
    admin.post(
        "/campaigns",
        data={"name": "回访", "script_version_id": str(version_id), "handled_from": "2026-11-01",
              "handled_to": "2026-11-23"},
    )  # fmt: skip
    with engine.connect() as conn:
        campaign_id = conn.execute(text("SELECT id FROM campaigns")).scalar_one()
    for move in ("start", "pause", "resume"):
        admin.post(f"/campaigns/{campaign_id}/{move}")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, actor FROM audit_events WHERE action LIKE 'campaign.%' ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("campaign.create", "admin"), ("campaign.start", "admin"), ("campaign.pause", "admin"),
        ("campaign.resume", "admin"),
    ]  # fmt: skip
