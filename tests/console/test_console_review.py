"""The review inbox page (待研判) without a browser: what an agent and an inspector see, one
click labelling an item, a label given twice, the dashboard's count."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import Escalation, ReviewItem, User
from huifang.settings import Settings
from tests.factories import UNREADABLE_REPLY as UNREADABLE
from tests.factories import hashed_password, make_review_item

PASSWORD = "console-password-3"
Login = Callable[[str], str]


@pytest.fixture
def review_id(sqlite_engine: Engine, settings: Settings, clock: FakeClock) -> int:
    with Session(sqlite_engine) as session:
        for role in ("admin", "agent", "inspector"):
            session.add(
                User(
                    username=role,
                    role=role,
                    password_hash=hashed_password(PASSWORD),
                    created_at=clock.now(),
                )  # fmt: skip
            )
        made = make_review_item(session, settings)
        session.commit()
    return made


@pytest.fixture
def client(sqlite_engine: Engine, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    runtime = Runtime(settings=settings, engine=sqlite_engine, clock=clock)
    with TestClient(create_app(runtime), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def login(client: TestClient) -> Login:
    """Log in as `username`; the review page's CSRF token."""

    def as_user(username: str) -> str:
        assert (
            client.post("/login", data={"username": username, "password": PASSWORD}).status_code
            == 303
        )
        page = client.get("/review").text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        return found.group(1) if found else ""

    return as_user


def test_an_agent_sees_the_reply_its_question_incident_unit_and_the_five_labels(
    client: TestClient, login: Login, review_id: int
) -> None:
    login("agent")
    page = client.get("/review").text
    assert UNREADABLE in page and "回复1满意" in page  # the reply and the question it answered
    assert re.search(rf'<tr data-review="{review_id}">', page)
    labels = re.findall(r'data-label="(\w+)"', page)
    assert labels == ["satisfied", "basically_satisfied", "unsatisfied", "opt_out", "unclear"]
    assert "无法识别的语言" in page  # why it is here, in words


def test_an_inspector_reads_the_inbox_without_buttons(
    client: TestClient, login: Login, review_id: int
) -> None:
    login("inspector")
    page = client.get("/review").text
    assert UNREADABLE in page and "data-label=" not in page
    assert client.get(f"/review/{review_id}").status_code == 200


def test_one_click_labels_the_item_and_opens_the_escalation(
    client: TestClient, login: Login, review_id: int, sqlite_engine: Engine
) -> None:
    csrf = login("agent")
    reply = client.post(
        f"/review/{review_id}/label", data={"label": "unsatisfied", "csrf_token": csrf}
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/review"
    with Session(sqlite_engine) as session:
        item = session.get(ReviewItem, review_id)
        escalation = session.exec(select(Escalation)).one()
    assert item is not None and (item.label, item.escalation_id) == ("unsatisfied", escalation.id)
    assert f"#{review_id}" in client.get("/review").text  # the flash names the item


def test_a_label_given_already_comes_back_as_a_message_naming_who_gave_it(
    client: TestClient, login: Login, review_id: int
) -> None:
    csrf = login("agent")
    form = {"label": "unsatisfied", "csrf_token": csrf}
    client.post(f"/review/{review_id}/label", data=form)
    client.post(f"/review/{review_id}/label", data={**form, "label": "satisfied"})
    assert "该回复已由 agent 研判" in client.get("/review").text


def test_the_dashboard_shows_how_many_replies_wait_for_review(
    client: TestClient, login: Login, review_id: int
) -> None:
    login("admin")
    page = client.get("/dashboard?period=2026-11").text
    assert re.search(r'id="review-open"><a href="/review">1</a>', page)
