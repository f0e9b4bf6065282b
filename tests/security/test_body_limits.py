"""Item 2: request bodies are limited per route, while they stream in.

The app is driven over ASGI with a body that arrives chunk by chunk, so each test sees how
much of the body the server pulled before it answered: a refused body is never read to its
end, an upload route reads nothing before its caller is known, and a webhook checks its
HMAC on at most the small limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.settings import Settings
from tests.security.conftest import Login

CHUNK = 64 * 1024
MULTIPART = "multipart/form-data; boundary=x"
#: the start of a file part: what follows is the file, as long as the stream goes on
FILE_PART = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
SMALL = 256 * 1024  # the default max_body_bytes
HUGE = 300 * 1024 * 1024


@dataclass
class Streamed:
    status: int
    body: bytes
    #: bytes of the request body the app pulled before it answered
    pulled: int


def stream(
    app: FastAPI,
    path: str,
    *,
    size: int,
    headers: dict[str, str] | None = None,
    declare_length: bool = False,
    opening: bytes = b"",
) -> Streamed:
    """POST `size` bytes to `path` in CHUNK-sized pieces, generated as the app asks for them:
    `opening`, then filler."""

    async def run() -> Streamed:
        sent = 0
        answer: dict[str, object] = {"body": b""}
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if declare_length:
            raw_headers.append((b"content-length", str(size).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": raw_headers, "client": ("203.0.113.9", 5000),
            "server": ("testserver", 80), "state": {},
        }  # fmt: skip

        async def receive() -> dict[str, object]:
            nonlocal sent
            piece = min(CHUNK, size - sent)
            body = (opening if sent == 0 else b"") + b"x" * piece
            sent += piece
            return {"type": "http.request", "body": body[:piece], "more_body": sent < size}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] = bytes(answer["body"]) + bytes(message.get("body", b""))  # type: ignore[call-overload]

        await app(scope, receive, send)
        return Streamed(int(answer["status"]), bytes(answer["body"]), sent)  # type: ignore[call-overload]

    return asyncio.run(run())


@pytest.fixture
def app(runtime: Runtime, world: object) -> FastAPI:
    return create_app(runtime)


def _auth_headers(client: TestClient) -> dict[str, str]:
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return {"cookie": cookies, "x-csrf-token": client.headers["X-CSRF-Token"]}


def test_an_anonymous_huge_login_body_is_refused_at_the_small_limit(app: FastAPI) -> None:
    reply = stream(
        app, "/api/v1/auth/login", size=HUGE, headers={"content-type": "application/json"}
    )
    assert reply.status == 413
    assert reply.pulled <= SMALL + CHUNK


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(
    app: FastAPI,
) -> None:
    reply = stream(
        app, "/api/v1/auth/login", size=HUGE, declare_length=True,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert (reply.status, reply.pulled) == (413, 0)
    assert "bytes" in json.loads(reply.body)["detail"]


def test_a_body_within_the_limit_is_read_as_before(app_client: TestClient) -> None:
    reply = app_client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "x" * 200}
    )
    assert reply.status_code == 401


@pytest.mark.parametrize("path", ["/webhooks/sms-http/inbound", "/webhooks/twilio/sms"])
def test_a_webhook_checks_its_signature_on_at_most_the_small_limit(app: FastAPI, path: str) -> None:
    reply = stream(
        app, path, size=HUGE, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 413
    assert reply.pulled <= SMALL + CHUNK


def test_the_limit_follows_the_setting(runtime: Runtime, world: object) -> None:
    runtime.settings.max_body_bytes = 4 * CHUNK
    reply = stream(create_app(runtime), "/api/v1/units", size=8 * CHUNK)
    assert reply.status == 413
    assert reply.pulled <= 5 * CHUNK


def test_an_anonymous_import_is_refused_before_its_body_is_read(app: FastAPI) -> None:
    reply = stream(
        app, "/api/v1/incidents/import", size=HUGE,
        headers={"content-type": MULTIPART},
    )  # fmt: skip
    assert (reply.status, reply.pulled) == (401, 0)


@pytest.mark.parametrize("role", ["agent", "inspector", "supervisor"])
def test_an_import_by_another_role_is_refused_before_its_body_is_read(
    app: FastAPI, login_as: Login, role: str
) -> None:
    headers = {"content-type": MULTIPART, **_auth_headers(login_as(role))}
    reply = stream(app, "/api/v1/incidents/import", size=HUGE, headers=headers)
    assert (reply.status, reply.pulled) == (403, 0)


def test_an_admins_import_may_be_larger_than_the_small_limit(
    app_client: TestClient, bearer_for: Callable[[str], dict[str, str]]
) -> None:
    header = "source,external_id,occurred_at,handled_at,caller_phone,unit\n"
    rows = "".join(
        f"110,E{n},2026-11-22 10:00,2026-11-22 11:00,13800{n:06d},S1\n" for n in range(12000)
    )
    assert len(rows) > SMALL
    reply = app_client.post(
        "/api/v1/incidents/import",
        files={"file": ("incidents.csv", header + rows, "text/csv")},
        headers=bearer_for("integration"),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["inserted"] == 12000


def test_an_admins_import_over_its_own_limit_is_refused(
    runtime: Runtime, world: object, bearer_for: Callable[[str], dict[str, str]]
) -> None:
    runtime.settings.max_import_bytes = 8 * CHUNK
    headers = {"content-type": MULTIPART, **bearer_for("admin")}
    reply = stream(
        create_app(runtime), "/api/v1/incidents/import", size=HUGE, headers=headers,
        opening=FILE_PART,
    )  # fmt: skip
    assert reply.status == 413
    assert reply.pulled <= 9 * CHUNK


def test_an_upload_from_a_browser_session_needs_the_csrf_header(
    app: FastAPI, login_as: Login
) -> None:
    headers = {"content-type": MULTIPART, **_auth_headers(login_as("admin"))}
    del headers["x-csrf-token"]
    reply = stream(app, "/api/v1/incidents/import", size=HUGE, headers=headers)
    assert (reply.status, reply.pulled) == (403, 0)
    assert "X-CSRF-Token" in json.loads(reply.body)["detail"]


def test_settings_refuse_a_limit_below_one_kibibyte() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        Settings(max_body_bytes=10)
