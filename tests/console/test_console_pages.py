"""Console pages without a browser: login, roles, CSRF, language, the script editor's
fragments. Fast; the walks through whole paths are in test_console_browser.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from huifang.clock import FakeClock
from huifang.domain.models import Escalation, User
from huifang.followup.escalations import escalate
from huifang.ivr.script import builtin_scripts_dir
from huifang.settings import Settings
from tests.console.conftest import PASSWORD
from tests.factories import make_incident


def test_anonymous_visitor_is_sent_to_login_with_the_page_to_return_to(client: TestClient) -> None:
    reply = client.get("/dashboard")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?next=/dashboard"


def test_wrong_password_shows_the_message_in_chinese(client: TestClient) -> None:
    reply = client.post("/login", data={"username": "admin", "password": "wrong-password"})
    assert reply.status_code == 401
    assert "用户名或密码错误" in reply.text


def test_an_address_with_too_many_failed_logins_gets_the_login_page_with_the_refusal(
    client: TestClient, settings: Settings
) -> None:
    settings.login_address_max_failures = 2  # read when the first login is counted
    for username in ("nobody", "somebody"):
        client.post("/login", data={"username": username, "password": "wrong-password"})
    reply = client.post("/login", data={"username": "agent", "password": PASSWORD})
    assert reply.status_code == 429
    assert "登录失败次数过多" in reply.text
    assert 'name="password"' in reply.text


def test_login_lands_on_the_roles_home_page(client: TestClient) -> None:
    reply = client.post("/login", data={"username": "agent", "password": PASSWORD})
    assert reply.headers["location"] == "/queue"


def test_login_ignores_a_next_address_on_another_site(client: TestClient) -> None:
    reply = client.post(
        "/login", data={"username": "agent", "password": PASSWORD, "next": "//evil.example/"}
    )
    assert reply.headers["location"] == "/queue"


def test_agent_may_not_open_the_script_editor(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("agent")
    assert client.get("/scripts").status_code == 403


def test_form_post_without_the_csrf_token_is_refused(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("admin")
    reply = client.post("/units", data={"code": "X", "name": "新所", "level": "station"})
    assert reply.status_code == 403


def test_form_post_with_the_csrf_token_creates_the_unit(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    token = logged_in("admin")
    reply = client.post(
        "/units", data={"code": "X", "name": "新所", "level": "bureau", "csrf_token": token}
    )
    assert reply.status_code == 303
    assert "新所" in client.get("/units").text


def test_validation_fragment_names_the_bad_node(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    token = logged_in("admin")
    reply = client.post(
        "/scripts/validate",
        data={"yaml_text": "name: x\nlanguage: zh-CN\nquestions: []\n"},
        headers={"X-CSRF-Token": token},
    )
    assert 'id="script-errors"' in reply.text
    assert "questions" in reply.text


def test_try_plays_the_script_with_the_typed_keys(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    token = logged_in("admin")
    text = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
    reply = client.post(
        "/scripts/try",
        data={"yaml_text": text, "inputs": "1\n3\n1\n1\n1\n"},
        headers={"X-CSRF-Token": token},
    )
    transcript = reply.text.split('id="try-transcript">', 1)[1]
    assert "&gt; 3" in transcript  # the typed key, HTML-escaped
    assert "escalate" in transcript


def test_lang_query_switches_to_english_and_is_remembered(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("agent")
    assert "Escalation queue" in client.get("/queue?lang=en-US").text
    assert "Escalation queue" in client.get("/queue").text


def test_listen_renders_the_prompt_and_serves_its_audio(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    token = logged_in("admin")
    reply = client.post(
        "/scripts/listen",
        data={"text": "您好，这里是回访中心。", "language": "zh-CN"},
        headers={"X-CSRF-Token": token},
    )
    source = reply.text.split('src="', 1)[1].split('"', 1)[0]
    audio = client.get(source)
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF"


def test_prompt_audio_outside_the_prompts_folder_is_not_served(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("admin")
    assert client.get("/scripts/prompts/..%2Fhuifang.db").status_code == 404


def test_agent_defers_an_unreachable_citizen_to_a_local_date_and_time(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine, clock: FakeClock
) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        incident = make_incident(session)
        complaint = escalate(
            session, incident_id=incident.id, origin="import", now=clock.now(), sla_hours=24
        )
        session.commit()
    token = logged_in("agent")
    client.post(f"/cases/{complaint.id}/claim", data={"csrf_token": token})
    reply = client.post(
        f"/cases/{complaint.id}/defer",
        data={
            "csrf_token": token,
            "note": "无人接听",
            "retry_at": _shanghai(clock.now() + timedelta(hours=3)),
        },
    )
    assert reply.headers["location"] == "/queue"
    with Session(sqlite_engine) as session:
        stored = session.get(Escalation, complaint.id)
    assert stored is not None
    assert (stored.state, stored.notes) == ("open", "无人接听")
    assert stored.retry_after == clock.now() + timedelta(hours=3)


def _shanghai(moment: datetime) -> str:
    """A `datetime-local` value in the deployment's zone (Asia/Shanghai by default)."""
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def test_a_deferral_to_a_past_time_is_refused_and_the_case_stays_claimed(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine, clock: FakeClock
) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        complaint = escalate(
            session, incident_id=make_incident(session).id, origin="import", now=clock.now(),
            sla_hours=24,
        )  # fmt: skip
        session.commit()
    token = logged_in("agent")
    client.post(f"/cases/{complaint.id}/claim", data={"csrf_token": token})
    reply = client.post(
        f"/cases/{complaint.id}/defer",
        data={"csrf_token": token, "retry_at": _shanghai(clock.now() - timedelta(hours=1))},
    )
    assert reply.headers["location"] == f"/cases/{complaint.id}"
    with Session(sqlite_engine) as session:
        stored = session.get(Escalation, complaint.id)
    assert stored is not None and (stored.state, stored.retry_after) == ("claimed", None)


def test_a_browser_refused_a_page_gets_an_error_page_in_the_console_layout(
    client: TestClient, logged_in: Callable[[str], str]
) -> None:
    logged_in("agent")
    reply = client.get("/scripts", headers={"accept": "text/html"})
    assert reply.status_code == 403
    assert reply.headers["content-type"].startswith("text/html")
    assert "无权访问此页面" in reply.text


def test_the_api_keeps_answering_errors_in_json_even_to_a_browser(client: TestClient) -> None:
    reply = client.get("/api/v1/tickets/1", headers={"accept": "text/html"})
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/json"


def _agent_id(engine: Engine) -> int:
    with Session(engine) as session:
        agent = session.execute(select(User).where(col(User.username) == "agent")).scalar_one()
        assert agent.id is not None
        return agent.id


def test_the_users_page_has_an_edit_form_per_user_with_the_csrf_token(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine
) -> None:
    token = logged_in("admin")
    page = client.get("/users").text
    form = page.split(f'action="/users/{_agent_id(sqlite_engine)}"', 1)[1].split("</form>", 1)[0]
    assert f'name="csrf_token" value="{token}"' in form
    assert 'name="active" value="true" checked' in form


def test_the_edit_form_edits_the_user(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine
) -> None:
    token = logged_in("admin")
    agent_id = _agent_id(sqlite_engine)
    form = {"csrf_token": token, "role": "inspector", "display_name": "李四", "phone": ""}
    reply = client.post(f"/users/{agent_id}", data=form)  # "active" unticked: deactivated
    assert reply.status_code == 303
    with Session(sqlite_engine) as session:
        agent = session.get(User, agent_id)
        assert agent is not None
        assert (agent.role, agent.display_name, agent.active) == ("inspector", "李四", False)


def test_the_edit_form_shows_a_refusal_as_the_create_form_does(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine
) -> None:
    token = logged_in("admin")
    form = {"csrf_token": token, "role": "supervisor", "active": "true"}
    assert client.post(f"/users/{_agent_id(sqlite_engine)}", data=form).status_code == 303
    assert "单位负责人须选择所属单位" in client.get("/users").text
    with Session(sqlite_engine) as session:
        agent = session.get(User, _agent_id(sqlite_engine))
        assert agent is not None and agent.role == "agent"


def test_the_edit_form_needs_the_csrf_token(
    client: TestClient, logged_in: Callable[[str], str], sqlite_engine: Engine
) -> None:
    logged_in("admin")
    reply = client.post(f"/users/{_agent_id(sqlite_engine)}", data={"role": "inspector"})
    assert reply.status_code == 403
