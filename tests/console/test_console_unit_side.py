"""The unit's side in the console: the notices page and its badge, the rectification report
with files sent by htmx through the upload route, 申请延期 and its approval, and the links to
print the 督办单."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from huifang.clock import FakeClock
from huifang.domain.models import Attachment, Ticket, User
from huifang.followup.tickets import acknowledge
from tests.factories import make_ticket


@pytest.fixture
def ticket_id(sqlite_engine: Engine, clock: FakeClock) -> int:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        ticket = make_ticket(session, now=clock.now())
        session.commit()
    assert ticket.id is not None
    return ticket.id


def test_a_new_ticket_shows_in_the_notices_and_the_badge_until_read(
    client: TestClient, logged_in: Callable[[str], str], ticket_id: int
) -> None:
    token = logged_in("admin")
    assert client.get("/notifications/badge").text == "1"
    page = client.get("/notifications").text
    assert "督办单已下发" in page
    notice_id = page.split('data-notice="', 1)[1].split('"', 1)[0]
    client.post(f"/notifications/{notice_id}/read", data={"csrf_token": token})
    assert client.get("/notifications/badge").text == ""


def test_the_report_carries_its_files_through_the_upload_route(
    client: TestClient, logged_in: Callable[[str], str], ticket_id: int, sqlite_engine: Engine,
    clock: FakeClock,
) -> None:  # fmt: skip
    token = logged_in("admin")
    with Session(sqlite_engine) as session:
        admin = session.execute(select(User).where(col(User.username) == "admin")).scalar_one()
        acknowledge(session, ticket_id, actor=admin, now=clock.now())
        session.commit()
    without_header = client.post(f"/tickets/{ticket_id}/report", data={"text": "已整改"})
    assert without_header.status_code == 403
    reply = client.post(
        f"/tickets/{ticket_id}/report", data={"text": "已整改，附现场照片"},
        files=[("files", ("现场.jpg", b"\xff\xd8\xff\xe0 photo", "image/jpeg"))],
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )  # fmt: skip
    assert reply.headers["HX-Redirect"] == f"/tickets/{ticket_id}"
    with Session(sqlite_engine) as session:
        [stored] = session.execute(select(Attachment)).scalars().all()
        assert session.get(Ticket, ticket_id).state == "rectified"  # type: ignore[union-attr]
    assert stored.filename == "现场.jpg"
    assert "现场.jpg" in client.get(f"/tickets/{ticket_id}").text


def test_an_extension_is_asked_and_approved_from_the_ticket_page(
    client: TestClient, logged_in: Callable[[str], str], ticket_id: int, sqlite_engine: Engine
) -> None:
    token = logged_in("admin")
    page = client.get(f"/tickets/{ticket_id}").text
    assert 'id="extension-form"' in page and f'href="/api/v1/tickets/{ticket_id}/pdf"' in page
    default = page.split('name="deadline" value="', 1)[1].split('"', 1)[0]
    client.post(
        f"/tickets/{ticket_id}/extension",
        data={"deadline": default, "reason": "需协调供电部门", "csrf_token": token},
    )
    page = client.get(f"/tickets/{ticket_id}").text
    request_id = page.split('data-extension="', 1)[1].split('"', 1)[0]
    assert "待审批" in page and 'id="extension-form"' not in page
    client.post(
        f"/tickets/{ticket_id}/extension/{request_id}/approve",
        data={"note": "同意", "csrf_token": token},
    )
    with Session(sqlite_engine) as session:
        deadline = session.get(Ticket, ticket_id).deadline_at  # type: ignore[union-attr]
    assert deadline.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M") == default
    assert "已批准" in client.get(f"/tickets/{ticket_id}").text
