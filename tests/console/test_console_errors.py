"""Errors and interruptions in the console, in the reader's language and layout: a bad or
unknown address is a console 404 page with the menu (the API keeps JSON), refusals are in
Chinese, and a form posted after the session ended is kept through the login and offered
again filled in."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.auth import SESSION_COOKIE
from huifang.api.console.messages import localize, localize_input_errors, localize_script_error
from huifang.clock import FakeClock
from huifang.domain.models import Escalation
from huifang.followup.escalations import escalate
from tests.console.conftest import PASSWORD
from tests.console.latin_words import stray_latin_words, visible_text
from tests.factories import make_incident


def _complaint(engine: Engine, clock: FakeClock) -> int:
    with Session(engine, expire_on_commit=False) as session:
        complaint = escalate(
            session, incident_id=make_incident(session).id, origin="import", now=clock.now(),
            sla_hours=24,
        )  # fmt: skip
        session.commit()
    assert complaint.id is not None
    return complaint.id


def test_a_console_address_with_a_word_for_an_id_is_a_404_page_with_the_menu(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("agent")
    reply = client.get("/tickets/abc")
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith("text/html")
    assert "页面或记录不存在" in reply.text
    assert 'href="/queue"' in reply.text  # the agent's menu


def test_an_unknown_console_address_is_a_404_page_even_without_an_accept_header(
    client: TestClient,
) -> None:
    reply = client.get("/no-such-page", headers={"accept": "*/*"})
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith("text/html")
    assert stray_latin_words(visible_text(reply.text)) == []


def test_the_api_answers_a_bad_id_in_json(client: TestClient) -> None:
    reply = client.get("/api/v1/tickets/abc", headers={"accept": "text/html"})
    assert reply.headers["content-type"] == "application/json"


def test_a_refusal_from_the_domain_reaches_the_chinese_page_in_chinese() -> None:
    message = "escalation 7: you do not hold a live claim on it"
    assert localize(message, "zh-CN") == "您未认领此案件，或认领已超时"
    assert localize(message, "en-US") == message


def test_a_refusal_the_catalogue_does_not_know_names_its_field_in_chinese() -> None:
    assert localize("notes: something new went wrong", "zh-CN") == "「备注」填写有误，请检查后重试"
    assert stray_latin_words(localize("frobnicate: not today", "zh-CN")) == []


def test_form_validation_errors_name_the_field_in_chinese() -> None:
    errors = [{"loc": ("body", "findings"), "type": "missing", "msg": "Field required"}]
    assert localize_input_errors(errors, "zh-CN") == "核查情况：必填"


def test_script_editor_findings_are_in_chinese() -> None:
    assert localize_script_error("no question 'arrival' (name a question id)", "zh-CN") == (
        "没有编号为「arrival」的问题"
    )
    assert stray_latin_words(localize_script_error("Input should be a valid number", "zh-CN")) == []


def _expire_session(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "expired-or-forged")


def test_a_form_posted_after_the_session_ended_gets_the_login_page_carrying_its_fields(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine, clock: FakeClock
) -> None:
    complaint_id = _complaint(sqlite_engine, clock)
    token = logged_in("agent")
    _expire_session(client)
    reply = client.post(
        f"/cases/{complaint_id}/resolve",
        data={"csrf_token": token, "outcome": "explained", "findings": "已向群众解释说明"},
    )
    assert reply.status_code == 401
    assert "登录已过期" in reply.text
    assert 'value="已向群众解释说明"' in reply.text
    assert f'name="next" value="/cases/{complaint_id}/resolve"' in reply.text
    assert token not in reply.text  # the stale token is not carried


def test_after_login_the_interrupted_form_is_offered_again_filled_in_and_not_applied(
    client: TestClient, sqlite_engine: Engine, clock: FakeClock
) -> None:
    complaint_id = _complaint(sqlite_engine, clock)
    reply = client.post(
        "/login",
        data={
            "username": "agent", "password": PASSWORD, "next": f"/cases/{complaint_id}/resolve",
            "carry_name": ["outcome", "findings"], "carry_value": ["explained", "已向群众解释说明"],
        },
    )  # fmt: skip
    assert reply.status_code == 200
    assert f'action="/cases/{complaint_id}/resolve"' in reply.text
    assert "已向群众解释说明</textarea>" in reply.text
    assert 'name="outcome" value="explained"' in reply.text
    fresh = reply.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert fresh and client.cookies.get(SESSION_COOKIE)
    with Session(sqlite_engine) as session:
        stored = session.get(Escalation, complaint_id)
        assert stored is not None and stored.state == "open"


def test_an_htmx_action_after_the_session_ended_sends_the_page_to_the_login(
    client: TestClient, sqlite_engine: Engine, clock: FakeClock
) -> None:
    complaint_id = _complaint(sqlite_engine, clock)
    reply = client.post(
        f"/cases/{complaint_id}/claim",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/queue?view=mine"},
    )
    assert reply.status_code == 204
    assert reply.headers["HX-Redirect"] == "/login?next=/queue"


def test_a_success_message_naming_a_user_is_shown_as_it_is(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    token = logged_in("admin")
    form = {"csrf_token": token, "username": "zhangwei", "password": PASSWORD, "role": "agent"}
    client.post("/users", data=form)
    assert "zhangwei ✓" in client.get("/users").text
