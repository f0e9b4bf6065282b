"""Item 8 in headless Chromium: every console page of every role works under the
Content-Security-Policy (no violation reported, the dashboard's charts drawn), and logging
out in the browser ends the session on the server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from huifang.api.console.web import NAV
from tests.console import conftest as console_fixtures
from tests.console.conftest import ROLES, Site

pytestmark = pytest.mark.browser
site = console_fixtures.site
browser = console_fixtures.browser
login = console_fixtures.login


@pytest.fixture
def violations(login: Callable[..., Any]) -> Iterator[Callable[[str], tuple[Any, list[str]]]]:
    """`as_role("agent")`: a logged-in page and the CSP violations it reports from then on."""

    def as_role(role: str) -> tuple[Any, list[str]]:
        page = login(role)
        seen: list[str] = []
        page.on(
            "console",
            lambda message: (
                seen.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        return page, seen

    yield as_role


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_a_role_works_under_the_policy(
    violations: Callable[[str], tuple[Any, list[str]]], site: Site, role: str
) -> None:
    page, seen = violations(role)
    for path, _label in NAV[role]:
        reply = page.goto(f"{site.url}{path}")
        assert reply is not None and reply.status == 200, path
        page.wait_for_load_state("networkidle")
        if path == "/dashboard":
            page.wait_for_selector("body[data-charts-ready=yes]")
            assert page.locator("#trend-chart svg").count() == 1
    assert seen == []


def test_logging_out_in_the_browser_ends_the_session_on_the_server(
    login: Callable[..., Any], site: Site
) -> None:
    page = login("agent")
    kept = [c for c in page.context.cookies() if c["name"] == "huifang_session"]
    page.click("header form[action='/logout'] button")
    page.wait_for_url("**/login")
    page.context.add_cookies(kept)
    page.goto(f"{site.url}/queue")
    assert "/login" in page.url
