"""The audit log search: words anywhere, the details too (rows stored before details were
kept readable as well), by action, actor, target and time, a page at a time with the total;
the console shows details as written, not as `\\u` escapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.audit import record_audit

Login = Callable[[str], TestClient]


@pytest.fixture
def entries(engine: Engine, clock: FakeClock, world: Any) -> None:
    """Three days of entries: 120 claims, one ticket issued with findings, one old-style row."""
    admin = world.users["admin"]
    with Session(engine) as session:
        for n in range(120):
            record_audit(
                session, at=clock.now() - timedelta(days=2, minutes=n), actor=world.users["agent"],
                action="escalation.claim", target_type="escalation", target_id=n,
            )  # fmt: skip
        record_audit(
            session, at=clock.now() - timedelta(days=1), actor=admin, action="ticket.issue",
            target_type="ticket", target_id=7, detail={"findings": "出警迟缓，督字第七号"},
        )  # fmt: skip
        session.commit()
        session.execute(
            text(
                "INSERT INTO audit_events (at, actor, action, target_type, target_id, detail) "
                "VALUES (:at, 'system', 'ticket.overdue', 'ticket', '8', :detail)"
            ),
            {"at": clock.now(), "detail": '{"note": "\\u7763\\u529e\\u8d85\\u671f"}'},
        )
        session.commit()


def search(login_as: Login, **params: Any) -> tuple[int, list[dict[str, Any]]]:
    reply = login_as("inspector").get("/api/v1/audit", params=params)
    assert reply.status_code == 200, reply.text
    return int(reply.headers["X-Total-Count"]), reply.json()


def test_words_in_the_details_find_the_entry(login_as: Login, entries: None) -> None:
    total, found = search(login_as, q="出警迟缓")
    assert (total, [e["target_id"] for e in found]) == (1, ["7"])


def test_details_stored_as_escapes_are_found_by_the_words(login_as: Login, entries: None) -> None:
    total, found = search(login_as, q="督办超期")
    assert (total, found[0]["detail"]) == (1, {"note": "督办超期"})


def test_every_match_is_reachable_page_by_page(login_as: Login, entries: None) -> None:
    total, first = search(login_as, action="escalation.", limit=100)
    _, rest = search(login_as, action="escalation.", limit=100, offset=100)
    assert (total, len(first), len(rest)) == (120, 100, 20)


def test_a_time_range_and_an_actor_narrow_the_search(
    login_as: Login, entries: None, clock: FakeClock
) -> None:
    since = (clock.now() - timedelta(days=1, hours=1)).isoformat()
    total, found = search(login_as, since=since, actor="admin")
    assert (total, [e["action"] for e in found]) == (1, ["ticket.issue"])
    assert search(login_as, target_type="ticket", target_id="8")[0] == 1


def test_percent_signs_are_no_wildcards(login_as: Login, entries: None) -> None:
    assert search(login_as, q="%")[0] == 0


def test_the_console_shows_readable_details_and_a_total(
    login_as: Login, entries: None, clock: FakeClock
) -> None:
    day = (clock.now() - timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    page = login_as("inspector").get("/audit", params={"q": "督字", "day_from": day}).text
    assert "findings: 出警迟缓，督字第七号" in page
    assert "\\u7763" not in page and "共 1 条" in page
