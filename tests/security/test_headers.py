"""Item 8: security headers on every response, the Origin check of unsafe requests, the
Secure cookie flag, and `/docs` (no CDN outside development)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from huifang.api.app import create_app
from huifang.api.headers import CONTENT_SECURITY_POLICY
from huifang.bootstrap import Runtime
from huifang.settings import Settings
from tests.security.conftest import PASSWORD, Login

PAGE = {"Accept": "text/html"}


@pytest.mark.parametrize(
    ("role", "path", "headers"),
    [
        ("admin", "/api/v1/users", {}),
        ("agent", "/queue", PAGE),
        ("admin", "/no/such/page", PAGE),
        (None, "/api/v1/auth/me", {}),
        (None, "/login", PAGE),
    ],
    ids=["api", "console", "404-page", "401-api", "login-page"],
)
def test_every_response_carries_the_security_headers(
    login_as: Login, app_client: TestClient, role: str | None, path: str, headers: dict[str, str]
) -> None:
    client = login_as(role) if role else app_client
    reply = client.get(path, headers=headers)
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["referrer-policy"] == "same-origin"
    assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert reply.headers["cache-control"] == "no-store"


def test_the_policy_allows_no_inline_script() -> None:
    scripts = next(d for d in CONTENT_SECURITY_POLICY.split("; ") if d.startswith("script-src"))
    assert scripts == "script-src 'self'"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_a_webhook_refusal_carries_them_too(app_client: TestClient) -> None:
    reply = app_client.post("/webhooks/twilio/sms", data={"Body": "1"})
    assert reply.status_code == 403
    assert reply.headers["cache-control"] == "no-store"


def test_static_files_keep_their_own_cache_policy(app_client: TestClient) -> None:
    reply = app_client.get("/static/console.css")
    assert reply.headers["cache-control"].startswith("public")
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_hsts_is_sent_only_behind_an_https_public_url(runtime: Runtime) -> None:
    with TestClient(create_app(runtime)) as plain:
        assert "strict-transport-security" not in plain.get("/healthz").headers
    runtime.settings.public_base_url = "https://huifang.example.gov.cn"
    with TestClient(create_app(runtime)) as secure:
        assert secure.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def _console_login(client: TestClient, origin: str | None) -> int:
    headers = {"Origin": origin} if origin else {}
    reply = client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD},
        headers=headers,
        follow_redirects=False,
    )
    return reply.status_code


def test_a_cross_site_login_form_is_refused(app_client: TestClient, world: object) -> None:
    assert _console_login(app_client, "https://evil.example") == 403
    assert "huifang_session" not in app_client.cookies


@pytest.mark.parametrize("origin", ["http://testserver", "http://127.0.0.1:8000", None])
def test_a_login_from_our_own_origin_or_without_one_passes(
    app_client: TestClient, world: object, origin: str | None
) -> None:
    assert _console_login(app_client, origin) == 303


def test_a_cross_site_request_with_a_session_is_refused(login_as: Login) -> None:
    admin = login_as("admin")
    reply = admin.post(
        "/api/v1/units",
        json={"code": "X1", "name": "x", "level": "station"},
        headers={"Origin": "null"},
    )
    assert reply.status_code == 403


@pytest.mark.parametrize(
    ("public_url", "setting", "secure"),
    [
        ("http://127.0.0.1:8000", None, False),
        ("https://huifang.example.gov.cn", None, True),
        ("https://huifang.example.gov.cn", False, False),
        ("http://10.0.0.5:8000", True, True),
    ],
)
def test_the_session_cookie_is_secure_behind_https_unless_told_otherwise(
    public_url: str, setting: bool | None, secure: bool
) -> None:
    settings = Settings(public_base_url=public_url, session_cookie_secure=setting)
    assert settings.cookie_secure is secure


def test_a_login_behind_https_sets_a_secure_cookie(runtime: Runtime, world: object) -> None:
    runtime.settings.public_base_url = "https://huifang.example.gov.cn"
    with TestClient(create_app(runtime)) as client:
        reply = client.post("/api/v1/auth/login", json={"username": "agent", "password": PASSWORD})
    assert "secure" in reply.headers["set-cookie"].lower()


def test_docs_are_off_by_default_and_the_schema_stays(app_client: TestClient) -> None:
    assert app_client.get("/docs").status_code == 404
    assert app_client.get("/redoc").status_code == 404
    assert app_client.get("/openapi.json").status_code == 200


def test_docs_in_development_carry_their_own_policy(runtime: Runtime) -> None:
    runtime.settings.api_docs = True
    with TestClient(create_app(runtime)) as client:
        reply = client.get("/docs")
    assert reply.status_code == 200
    assert "cdn.jsdelivr.net" in reply.headers["content-security-policy"]
