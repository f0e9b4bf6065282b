"""No English in the Chinese console: every page each role can reach (following the menu and
the links on each page, plus the known routes and the error pages) is read as text, and a
Latin-letter word outside the small allow-list of `latin_words` fails the test."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session

from huifang.domain.models import ScriptVersion, Unit, User
from huifang.ivr.script import builtin_scripts_dir
from tests.console.conftest import PASSWORD, ROLES, Site
from tests.console.latin_words import stray_latin_words, visible_text

#: links not to follow: downloads, audio, leaving, and switching the language
_NOT_PAGES = ("/logout", "/static/", "/recordings/", "/scripts/prompts/", "/dashboard/export")
#: pages no link leads to but a user may meet: bad ids, unknown addresses, other records
_KNOWN = (
    "/tickets/abc", "/cases/abc", "/cases/999999", "/tickets/999999", "/review/999999",
    "/no-such-page", "/queue?view=nonsense&offset=-5&opened_from=yesterday",
    "/dashboard?period=2026-13", "/scripts/edit?name=nosuch1",
)  # fmt: skip
MAX_PAGES = 60
PER_ROUTE = 2


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)


def _links(base: str, html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    found = []
    for href in parser.links:
        url = urlsplit(urljoin(base, href))
        path = url.path + (f"?{url.query}" if url.query else "")
        if url.netloc == urlsplit(base).netloc and "lang=" not in url.query:
            if not path.startswith(_NOT_PAGES):
                found.append(path)
    return found


def _client(site: Site, role: str | None) -> httpx.Client:
    client = httpx.Client(
        base_url=site.url, headers={"Accept": "text/html"}, follow_redirects=True, timeout=30
    )
    if role is not None:
        reply = client.post("/login", data={"username": role, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
    return client


def names_in_the_data(site: Site) -> frozenset[str]:
    """User names, script names and unit codes: names people gave things, not words."""
    with Session(site.engine) as session:
        names = [
            *session.execute(select(User.username, User.display_name)).all(),
            *session.execute(select(ScriptVersion.name)).all(),
            *session.execute(select(Unit.code)).all(),
        ]
    values = [value or "" for row in names for value in row]
    values += [path.stem.split(".")[0] for path in builtin_scripts_dir().glob("*.yaml")]
    words = {w for value in values for w in [value, *re.split(r"[^A-Za-z]+", value)]}
    return frozenset(words - {""})


def _walk(client: httpx.Client, start: list[str], names: frozenset[str]) -> dict[str, list[str]]:
    """Every page reachable from `start`: the stray words of each page that has any."""
    seen: dict[str, int] = {}
    todo = list(start)
    strays: dict[str, list[str]] = {}
    fetched = 0
    while todo and fetched < MAX_PAGES:
        path = todo.pop(0)
        # two pages per route are enough for /cases/1, /cases/2 … and /queue?view=… …
        shape = "".join("#" if c.isdigit() else c for c in path.split("?")[0])
        if seen.get(shape, 0) >= PER_ROUTE and path not in start:
            continue
        seen[shape] = seen.get(shape, 0) + 1
        fetched += 1
        reply = client.get(path)
        if reply.headers.get("content-type") == "application/pdf":
            continue  # a printout (tests/followup/test_followup_printing.py reads them)
        if "text/html" not in reply.headers.get("content-type", ""):
            strays[path] = [f"not a page: {reply.headers.get('content-type')}"]
            continue
        words = stray_latin_words(visible_text(reply.text), names)
        if words:
            strays[path] = sorted(set(words))
        todo.extend(_links(str(reply.url), reply.text))
    return strays


def _report(strays: dict[str, list[str]]) -> str:
    return "English on the Chinese console:\n" + "\n".join(f"{p}: {w}" for p, w in strays.items())


@pytest.mark.parametrize("role", ROLES)
def test_no_page_of_the_chinese_console_shows_english_words(site: Site, role: str) -> None:
    client = _client(site, role)
    try:
        strays = _walk(client, ["/", *_KNOWN], names_in_the_data(site))
    finally:
        client.close()
    assert strays == {}, _report(strays)


def test_the_login_and_error_pages_show_no_english_words_to_a_visitor(site: Site) -> None:
    client = _client(site, None)
    try:
        strays = _walk(client, ["/login", "/no-such-page", "/tickets/abc"], frozenset())
    finally:
        client.close()
    assert strays == {}, _report(strays)
