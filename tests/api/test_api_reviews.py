"""The review inbox over HTTP: the open items with their question, incident and unit; one
label per item (409 naming who labelled it first); the count in `/metrics`; the schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.domain.models import Escalation, ReviewItem
from huifang.settings import Settings
from tests.factories import UNREADABLE_REPLY as UNREADABLE
from tests.factories import make_incident, make_review_item

Login = Callable[[str], TestClient]


@pytest.fixture
def review_id(engine: Engine, settings: Settings, world: Any) -> int:
    with Session(engine, expire_on_commit=False) as session:
        made = make_review_item(
            session, settings, incident=make_incident(session, unit=world.station)
        )
        session.commit()
    return made


def test_the_inbox_lists_open_items_with_their_question_incident_and_unit(
    login_as: Login, review_id: int, world: Any
) -> None:
    inbox = login_as("agent").get("/api/v1/reviews")
    assert inbox.status_code == 200
    body = inbox.json()
    [item] = body["items"]
    assert body["open"] == 1
    assert (item["id"], item["text"], item["channel"], item["unit_name"]) == (
        review_id, UNREADABLE, "sms", world.station.name,
    )  # fmt: skip
    assert "回复1满意" in item["question"] and item["reason"] == "unknown_language"


def test_labelling_unsatisfied_answers_with_the_escalation_it_opened(
    login_as: Login, review_id: int, engine: Engine
) -> None:
    reply = login_as("agent").post(
        f"/api/v1/reviews/{review_id}/label", json={"label": "unsatisfied"}
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["review"]["label"] == "unsatisfied" and result["review"]["state"] == "labelled"
    with Session(engine) as session:
        escalation = session.get(Escalation, result["escalation_id"])
        assert escalation is not None and escalation.origin == "sms"


def test_a_second_label_is_409_naming_the_agent_who_gave_the_first(
    login_as: Login, review_id: int, engine: Engine
) -> None:
    assert (
        login_as("agent")
        .post(f"/api/v1/reviews/{review_id}/label", json={"label": "unsatisfied"})
        .status_code
        == 200
    )
    late = login_as("agent2").post(
        f"/api/v1/reviews/{review_id}/label", json={"label": "satisfied"}
    )
    assert late.status_code == 409
    assert "labelled unsatisfied by agent" in late.text
    with Session(engine) as session:
        assert session.exec(select(ReviewItem.label)).one() == "unsatisfied"


@pytest.mark.parametrize("role", ["inspector", "supervisor", "integration"])
def test_only_agents_and_admins_label(login_as: Login, review_id: int, role: str) -> None:
    reply = login_as(role).post(f"/api/v1/reviews/{review_id}/label", json={"label": "satisfied"})
    assert reply.status_code == 403


def test_an_inspector_reads_the_inbox(login_as: Login, review_id: int) -> None:
    assert login_as("inspector").get(f"/api/v1/reviews/{review_id}").json()["id"] == review_id


def test_a_label_that_is_no_label_is_422(login_as: Login, review_id: int) -> None:
    reply = login_as("agent").post(f"/api/v1/reviews/{review_id}/label", json={"label": "angry"})
    assert reply.status_code == 422


def test_metrics_count_the_open_review_items(app_client: TestClient, review_id: int) -> None:
    assert "huifang_review_inbox 1.0" in app_client.get("/metrics").text


def test_the_review_endpoints_are_in_the_openapi_schema(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/reviews",
        "/api/v1/reviews/{review_id}",
        "/api/v1/reviews/{review_id}/label",
    } <= set(paths)
