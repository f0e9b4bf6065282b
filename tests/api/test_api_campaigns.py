"""Campaigns over HTTP: a dry run says how many contacts a campaign adds and how many
incidents it leaves out and why, writing nothing; creating leaves out incidents already
surveyed unless `resurvey` is asked; starting queues the calls; admins only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from huifang.clock import FakeClock
from huifang.domain.models import CallAttempt, Campaign
from huifang.domain.scripts import find_script
from tests.factories import make_incident

Login = Callable[[str], TestClient]


@pytest.fixture
def body(engine: Engine, clock: FakeClock, world: Any) -> dict[str, Any]:
    """A voice campaign over three incidents handled an hour ago."""
    with Session(engine) as session:
        for n in range(3):
            make_incident(session, unit=world.station, caller_phone=f"+86135{n:08d}",
                          handled_at=clock.now() - timedelta(hours=1))  # fmt: skip
        version_id = find_script(session, "survey-110.zh-CN", clock.now()).id
        session.commit()
    day = (clock.now() - timedelta(hours=1)).date().isoformat()
    return {"name": "回访", "script_version_id": version_id, "handled_from": day,
            "handled_to": day, "channels": "voice"}  # fmt: skip


def campaigns(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Campaign)).one()


def test_a_dry_run_says_what_the_campaign_would_do_and_writes_nothing(
    login_as: Login, body: dict[str, Any], engine: Engine
) -> None:
    reply = login_as("admin").post("/api/v1/campaigns?dry_run=true", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "campaign": None,
        "contacts": {"incidents": 3, "adds": 3, "skipped": {
            "already_surveyed": 0, "in_another_campaign": 0, "same_citizen": 0, "opted_out": 0}},
    }  # fmt: skip
    assert campaigns(engine) == 0


def test_a_second_campaign_leaves_out_what_the_first_is_surveying_unless_asked(
    login_as: Login, body: dict[str, Any]
) -> None:
    admin = login_as("admin")
    first = admin.post("/api/v1/campaigns", json=body)
    assert first.status_code == 201 and first.json()["contacts"]["adds"] == 3
    second = admin.post("/api/v1/campaigns", json=body).json()
    assert (second["contacts"]["adds"], second["contacts"]["skipped"]["in_another_campaign"]) == (
        0,
        3,
    )
    again = admin.post("/api/v1/campaigns", json={**body, "resurvey": True}).json()
    assert again["contacts"]["adds"] == 3 and again["campaign"]["selection"]["resurvey"] is True


def test_starting_a_campaign_queues_its_calls(
    login_as: Login, body: dict[str, Any], engine: Engine
) -> None:
    admin = login_as("admin")
    campaign = admin.post("/api/v1/campaigns", json=body).json()["campaign"]
    started = admin.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert (started.json()["queued"], started.json()["campaign"]["state"]) == (3, "running")
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(CallAttempt)).one() == 3


def test_an_unknown_script_is_refused_naming_the_field(
    login_as: Login, body: dict[str, Any]
) -> None:
    reply = login_as("admin").post("/api/v1/campaigns", json={**body, "script_version_id": 999})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "script_version_id"]


def test_bad_calling_rules_are_refused_before_anything_is_written(
    login_as: Login, body: dict[str, Any], engine: Engine
) -> None:
    rules = {"retry_minutes": {"sunshine": 5}}
    reply = login_as("admin").post("/api/v1/campaigns", json={**body, "rules": rules})
    assert reply.status_code == 422 and "retry_minutes" in reply.text
    assert campaigns(engine) == 0


@pytest.mark.parametrize("role", ["agent", "supervisor", "inspector"])
def test_only_admins_create_campaigns(login_as: Login, body: dict[str, Any], role: str) -> None:
    assert login_as(role).post("/api/v1/campaigns?dry_run=true", json=body).status_code == 403


def test_a_running_campaign_pauses_resumes_and_finishes(
    login_as: Login, body: dict[str, Any], engine: Engine
) -> None:
    admin = login_as("admin")
    campaign = admin.post("/api/v1/campaigns", json=body).json()["campaign"]
    admin.post(f"/api/v1/campaigns/{campaign['id']}/start")
    for move, state in [("pause", "paused"), ("resume", "running"), ("finish", "finished")]:
        reply = admin.post(f"/api/v1/campaigns/{campaign['id']}/{move}")
        assert (reply.status_code, reply.json()["state"]) == (200, state)
    with Session(engine) as session:
        states = session.exec(select(CallAttempt.state)).all()
    assert set(states) == {"cancelled"}


def test_a_finished_campaign_cannot_resume(login_as: Login, body: dict[str, Any]) -> None:
    admin = login_as("admin")
    campaign = admin.post("/api/v1/campaigns", json=body).json()["campaign"]
    admin.post(f"/api/v1/campaigns/{campaign['id']}/start")
    assert admin.post(f"/api/v1/campaigns/{campaign['id']}/finish").status_code == 200
    assert admin.post(f"/api/v1/campaigns/{campaign['id']}/resume").status_code == 409


def test_the_list_shows_each_campaign_with_its_contacts_per_state(
    login_as: Login, body: dict[str, Any]
) -> None:
    admin = login_as("admin")
    campaign = admin.post("/api/v1/campaigns", json=body).json()["campaign"]
    [listed] = admin.get("/api/v1/campaigns").json()
    assert (listed["id"], listed["progress"]) == (campaign["id"], {"pending": 3})
    assert admin.get("/api/v1/campaigns", params={"state": "running"}).json() == []
    assert admin.get(f"/api/v1/campaigns/{campaign['id']}").json()["state"] == "draft"
    assert admin.get("/api/v1/campaigns/999").status_code == 404
