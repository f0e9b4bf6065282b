"""End to end, as a deployment runs: `huifang serve` (its defaults, a data directory of its
own) receives a signed SMS reply the reader cannot settle; an agent opens the review inbox in
Chromium and labels it unsatisfied with one click; the escalation exists."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from huifang.bootstrap import build_runtime
from huifang.db import create_db_engine
from huifang.domain.models import Contact, Escalation, ReviewItem, User
from huifang.settings import Settings
from huifang.sms.http import SIGNATURE_HEADER, body_signature
from tests.factories import T0, hashed_password, make_sms_surveyed_contact
from tests.factories import UNREADABLE_REPLY as UNREADABLE

pytestmark = pytest.mark.browser
SECRET = "e2e-webhook-secret"
PASSWORD = "review-password-1"


@dataclass
class Served:
    url: str
    database_url: str
    phone: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("served") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")}
    env |= {"HUIFANG_DATA_DIR": str(data_dir), "HUIFANG_SMS_HTTP_SIGNATURE_SECRET": SECRET}
    runtime = build_runtime(Settings(data_dir=data_dir))
    with Session(runtime.engine, expire_on_commit=False) as session:
        session.add(User(username="agent", role="agent", password_hash=hashed_password(PASSWORD),
                         created_at=T0))  # fmt: skip
        contact = make_sms_surveyed_contact(session)
        session.commit()
    database_url = runtime.settings.effective_database_url
    runtime.close()
    port = _free_port()
    huifang = Path(sys.executable).with_name("huifang")
    server = subprocess.Popen([str(huifang), "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("huifang serve did not start")
        time.sleep(0.2)
    yield Served(url, database_url, contact.phone)
    server.terminate()
    server.wait(timeout=20)


def send_reply(served: Served, body: str, message_id: str) -> httpx.Response:
    payload = json.dumps(
        {"mobile": served.phone, "content": body, "message_id": message_id}, ensure_ascii=False
    ).encode()
    return httpx.post(
        f"{served.url}/webhooks/sms-http/inbound", content=payload, timeout=10,
        headers={"Content-Type": "application/json",
                 SIGNATURE_HEADER: body_signature(SECRET, payload)},
    )  # fmt: skip


def test_an_agent_labels_an_unsettled_sms_reply_unsatisfied_and_the_escalation_exists(
    served: Served, browser: Any
) -> None:
    assert send_reply(served, UNREADABLE, "SM-E2E-1").status_code == 200
    engine = create_db_engine(served.database_url)
    with Session(engine) as session:
        item = session.exec(select(ReviewItem)).one()
        assert session.exec(select(Escalation)).all() == []  # not read: nobody is told yet
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{served.url}/login?lang=zh-CN")
    page.fill("input[name=username]", "agent")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(f"{served.url}/review")
    row = page.locator(f"tr[data-review='{item.id}']")
    assert UNREADABLE in row.inner_text()
    row.locator("button[data-label='unsatisfied']").click()
    assert f"#{item.id}" in page.wait_for_selector(".flash").inner_text()
    assert page.locator(f"tr[data-review='{item.id}']").count() == 0  # left the inbox
    context.close()
    with Session(engine) as session:
        escalation = session.exec(select(Escalation)).one()
        contact = session.exec(select(Contact).where(Contact.phone == served.phone)).one()
        labelled = session.get(ReviewItem, item.id)
    engine.dispose()
    assert (escalation.origin, escalation.contact_id, escalation.summary) == (
        "sms", contact.id, UNREADABLE,
    )  # fmt: skip
    assert labelled is not None and labelled.escalation_id == escalation.id


def test_two_unclear_replies_in_a_row_land_in_the_inbox(served: Served) -> None:
    engine = create_db_engine(served.database_url)
    with Session(engine, expire_on_commit=False) as session:
        contact = make_sms_surveyed_contact(session)
        session.commit()
    phone = contact.phone
    for number, body in enumerate(["你们是哪里？", "什么意思"]):
        payload_served = Served(served.url, served.database_url, phone)
        assert send_reply(payload_served, body, f"SM-E2E-U{number}").status_code == 200
    with Session(engine) as session:
        items = session.exec(select(ReviewItem).where(ReviewItem.contact_id == contact.id)).all()
    engine.dispose()
    assert [(i.text, i.reason) for i in items] == [("什么意思", "unclear_after_reask")]
