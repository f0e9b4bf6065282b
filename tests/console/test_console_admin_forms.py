"""The admin's forms have safe defaults: a campaign asks the survey script unless told
otherwise, says how many it contacts before it starts, can be finished, and warns when no
worker would place its calls; units are edited and moved within the hierarchy's rule; a new
user's role is chosen, never pre-selected; an inspector or admin sends a report back from the
ticket's page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from huifang.clock import FakeClock
from huifang.dialer.planning import new_campaign
from huifang.domain.campaigns import CampaignPlan, IncidentSelection
from huifang.domain.models import Campaign, Ticket, Unit, User
from huifang.domain.scripts import find_script
from huifang.domain.units import create_unit
from huifang.domain.workers import beat
from huifang.followup.second_callback import second_callback_script
from huifang.followup.tickets import acknowledge, report_rectification
from huifang.settings import Settings
from tests.factories import make_incident, make_ticket


@pytest.fixture
def campaign_id(sqlite_engine: Engine, settings: Settings, clock: FakeClock) -> int:
    """A draft voice campaign of two incidents; both scripts published, second-callback first."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        second_callback_script(session, "zh-CN", clock.now())
        survey = find_script(session, "survey-110.zh-CN", clock.now())
        handled = clock.now() - timedelta(hours=1)
        for n in range(2):
            make_incident(session, caller_phone=f"+86136{n:08d}", handled_at=handled)
        assert survey.id is not None
        plan = CampaignPlan(
            name="回访", script_version_id=survey.id, channels="voice",
            selection=IncidentSelection.handled_on(handled.date(), settings.tz),
        )  # fmt: skip
        created = new_campaign(session, plan, settings, now=clock.now(), by=None)
        session.commit()
    assert created.campaign is not None and created.campaign.id is not None
    return created.campaign.id


def test_the_campaign_form_chooses_the_survey_and_never_offers_second_callbacks(
    client: TestClient, logged_in: Callable[[str], str], campaign_id: int
) -> None:
    logged_in("admin")
    form = client.get("/campaigns").text.split('id="campaign-form"')[1].split("</form>")[0]
    assert "second-callback" not in form
    assert "selected>survey-110.zh-CN v1</option>" in form


def test_starting_asks_first_with_the_number_of_contacts(
    client: TestClient, logged_in: Callable[[str], str], campaign_id: int
) -> None:
    logged_in("admin")
    assert 'data-confirm="开始后将向 2 个回访对象发送短信或拨打电话。确定开始？"' in (
        client.get("/campaigns").text
    )


def test_a_running_campaign_is_finished_from_the_page(
    client: TestClient, logged_in: Callable[[str], str], campaign_id: int, sqlite_engine: Engine
) -> None:
    token = logged_in("admin")
    client.post(f"/campaigns/{campaign_id}/start", data={"csrf_token": token})
    assert f'action="/campaigns/{campaign_id}/finish"' in client.get("/campaigns").text
    client.post(f"/campaigns/{campaign_id}/finish", data={"csrf_token": token})
    with Session(sqlite_engine) as session:
        assert session.get(Campaign, campaign_id).state == "finished"  # type: ignore[union-attr]


def test_the_page_warns_when_no_worker_was_seen_lately(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine, clock: FakeClock
) -> None:
    logged_in("admin")
    assert 'id="no-worker"' in client.get("/campaigns").text
    with Session(sqlite_engine) as session:
        beat(session, "worker-1", clock.now() - timedelta(minutes=1))
        session.commit()
    assert 'id="no-worker"' not in client.get("/campaigns").text
    clock.advance(timedelta(minutes=5))
    assert "最近心跳" in client.get("/campaigns").text


@pytest.fixture
def units(sqlite_engine: Engine) -> dict[str, int]:
    with Session(sqlite_engine) as session:
        city = create_unit(session, code="C", name="市局", level="bureau")
        east = create_unit(session, code="E", name="东区分局", level="branch", parent=city)
        west = create_unit(session, code="W", name="西区分局", level="branch", parent=city)
        station = create_unit(session, code="E1", name="东门派出所", level="station", parent=east)
        other = create_unit(session, code="W1", name="西门派出所", level="station", parent=west)
        session.commit()
        return {u.code: u.id for u in (city, east, west, station, other) if u.id}


def test_a_station_is_moved_to_another_branch_with_its_duty_phone(
    client: TestClient,
    logged_in: Callable[[str], str],
    units: dict[str, int],
    sqlite_engine: Engine,
) -> None:
    token = logged_in("admin")
    reply = client.post(
        f"/units/{units['E1']}",
        data={"code": "E1", "name": "东门派出所", "level": "station", "parent_id": units["W"],
              "duty_phone": "13800138000", "csrf_token": token},
    )  # fmt: skip
    assert reply.status_code == 303
    with Session(sqlite_engine) as session:
        moved = session.get(Unit, units["E1"])
        assert moved is not None
        assert (moved.parent_id, moved.duty_phone) == (units["W"], "+8613800138000")


def test_a_station_under_a_station_is_refused_with_the_rule(
    client: TestClient,
    logged_in: Callable[[str], str],
    units: dict[str, int],
    sqlite_engine: Engine,
) -> None:
    token = logged_in("admin")
    reply = client.post(
        f"/units/{units['E1']}",
        data={"code": "E1", "name": "东门派出所", "level": "station", "parent_id": units["W1"],
              "csrf_token": token},
    )  # fmt: skip
    assert "上级单位「西门派出所」的级别不高于本单位" in client.get(reply.headers["location"]).text
    with Session(sqlite_engine) as session:
        parent = session.execute(
            select(col(Unit.parent_id)).where(col(Unit.id) == units["E1"])
        ).scalar_one()
    assert parent == units["E"]


def test_a_stations_edit_form_offers_no_station_as_its_parent(
    client: TestClient, logged_in: Callable[[str], str], units: dict[str, int]
) -> None:
    logged_in("admin")
    page = client.get("/units").text
    form = page.split(f'action="/units/{units["E1"]}"')[1].split("</form>")[0]
    parents = form.split('name="parent_id"')[1].split("</select>")[0]
    assert "西门派出所" not in parents and "西区分局" in parents


def test_the_new_user_form_has_no_role_chosen(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("admin")
    form = client.get("/users").text.split('action="/users"')[1].split("</form>")[0]
    assert '<select name="role" required><option value="" selected>请选择</option>' in form


def test_an_admin_sends_a_reported_rectification_back_to_the_unit(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine, clock: FakeClock
) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        admin = session.execute(select(User).where(col(User.username) == "admin")).scalar_one()
        ticket = make_ticket(session, now=clock.now())
        acknowledge(session, ticket.id, actor=admin, now=clock.now())
        report_rectification(session, ticket.id, actor=admin, text="已整改", now=clock.now())
        session.commit()
    token = logged_in("admin")
    page = client.get(f"/tickets/{ticket.id}").text
    assert 'id="send-back-form"' in page
    client.post(f"/tickets/{ticket.id}/send-back", data={"note": "缺少照片", "csrf_token": token})
    with Session(sqlite_engine) as session:
        assert session.get(Ticket, ticket.id).state == "acknowledged"  # type: ignore[union-attr]
    assert "缺少照片" in client.get(f"/tickets/{ticket.id}").text
