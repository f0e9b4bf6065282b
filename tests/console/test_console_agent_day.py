"""A callback agent's day in Chromium against the real `huifang serve`, started as the
README says, on a database seeded with a realistic queue: the queue's views, filters and
search; claim; the case's timeline with its questions' text; listening to a recording;
click-to-call on the simulated line (the agent's phone and the citizen's answer), its line
shown live and ended with an outcome; resolving one case with a ticket (to the unit shown
before it is issued) and one explained; deferring one to a date and time. Screenshots at
390 px and 1280 px wide go to test-artifacts/screenshots; at 390 px no page of the day
overflows sideways, squeezes a label to a character per line or cuts a button off.
"""

from __future__ import annotations

import json
import re
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from huifang.bootstrap import build_runtime
from huifang.domain.models import (
    Answer,
    AuditEvent,
    CallAttempt,
    Campaign,
    Contact,
    Escalation,
    Recording,
    Ticket,
    User,
)
from huifang.domain.scripts import find_script
from huifang.domain.units import create_unit
from huifang.followup.escalations import escalate
from huifang.followup.queue import claim
from huifang.settings import Settings
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, SCREENSHOTS
from tests.factories import hashed_password, make_incident
from tests.processes import serve, stop

AGENT_PHONE = "+8613900000001"
#: the citizens the simulated line rings: one answers, one is busy
ANSWERS, BUSY = "+8613812345678", "+8613887654321"
WIDTHS = (390, 1280)


@dataclass
class Day:
    url: str
    settings: Settings
    #: escalation ids: a voice complaint with a recording (answers), an imported 12345
    #: complaint (busy line), one past its SLA, one claimed by another agent
    voice: int
    hotline: int
    late: int
    taken: int


def _silence(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000)


def _seed(settings: Settings) -> Day:
    now = datetime.now(UTC)
    runtime = build_runtime(settings)
    with Session(runtime.engine, expire_on_commit=False) as session:
        city = create_unit(session, code="C", name="市公安局", level="bureau")
        branch = create_unit(session, code="E", name="东城分局", level="branch", parent=city)
        station = create_unit(session, code="E1", name="东门派出所", level="station", parent=branch)
        west = create_unit(session, code="W1", name="西门派出所", level="station", parent=city)
        password = hashed_password(PASSWORD)
        for name, phone in (("agent", AGENT_PHONE), ("agent2", "+8613900000002")):
            session.add(User(username=name, display_name=f"{name}-回访员", role="agent", phone=phone,
                             password_hash=password, created_at=now))  # fmt: skip
        session.flush()
        script = find_script(session, "survey-110.zh-CN", now)
        campaign = Campaign(name="十一月回访", state="running", script_version_id=script.id,  # type: ignore[arg-type]
                            created_at=now - timedelta(days=1))  # fmt: skip
        session.add(campaign)
        session.flush()
        voice = _voice_complaint(session, settings, campaign, station, now)
        hotline_incident = make_incident(
            session, unit=station, source="12345", external_id="12345-20261124-0007",
            caller_phone=BUSY, category="噪音扰民", summary="楼下商铺夜间施工噪音，民警未处理。",
            is_complaint=True, handled_at=now - timedelta(hours=30),
        )  # fmt: skip
        hotline = escalate(session, incident_id=hotline_incident.id, origin="import",  # type: ignore[arg-type]
                           now=now - timedelta(hours=3), sla_hours=24,
                           summary=hotline_incident.summary)  # fmt: skip
        late = escalate(
            session, incident_id=make_incident(session, unit=west, summary="报警后无人到场").id,  # type: ignore[arg-type]
            origin="import", now=now - timedelta(hours=30), sla_hours=24, summary="报警后无人到场",
        )  # fmt: skip
        taken = escalate(
            session, incident_id=make_incident(session, unit=west).id, origin="import",  # type: ignore[arg-type]
            now=now - timedelta(hours=1), sla_hours=24, summary="处警民警态度不好",
        )  # fmt: skip
        other = session.execute(select(User).where(User.username == "agent2")).scalar_one()  # type: ignore[arg-type]
        claim(session, taken.id, agent=other, now=now, lease_minutes=240)  # type: ignore[arg-type]
        session.commit()
        ids = (voice.id, hotline.id, late.id, taken.id)
    runtime.close()
    return Day("", settings, *ids)  # type: ignore[arg-type]


def _voice_complaint(
    session: Session, settings: Settings, campaign: Campaign, station: Any, now: datetime
) -> Escalation:
    """A survey call answered unsatisfied, with a recorded complaint (no speech model here:
    not transcribed)."""
    incident = make_incident(
        session, unit=station, caller_phone=ANSWERS, external_id="110-20261123-0042",
        caller_name="张敏", category="纠纷", summary="邻里纠纷，民警到场调解。",
        handled_at=now - timedelta(hours=20),
    )  # fmt: skip
    contact = Contact(campaign_id=campaign.id, incident_id=incident.id, phone=ANSWERS,  # type: ignore[arg-type]
                      state="answered", attempts=1)  # fmt: skip
    session.add(contact)
    session.flush()
    called = now - timedelta(hours=2)
    attempt = CallAttempt(contact_id=contact.id, campaign_id=campaign.id, state="completed",  # type: ignore[arg-type]
                          script_version_id=campaign.script_version_id, due_at=called,
                          dialed_at=called, answered_at=called, ended_at=called + timedelta(minutes=2),
                          created_at=called)  # fmt: skip
    session.add(attempt)
    session.flush()
    audio = settings.recordings_dir / "complaint.wav"
    _silence(audio)
    recording = Recording(attempt_id=attempt.id, path=str(audio), duration_seconds=1.0,
                          created_at=called + timedelta(minutes=1))  # fmt: skip
    session.add(recording)
    session.flush()
    for question, outcome in (
        ("confirm", None),
        ("attitude", "unsatisfied"),
        ("arrival_time", "satisfied"),
    ):
        session.add(Answer(contact_id=contact.id, incident_id=incident.id, attempt_id=attempt.id,  # type: ignore[arg-type]
                           question_id=question, dimension=question, outcome=outcome,
                           value="1" if outcome is None else "3", mode="dtmf",
                           created_at=called + timedelta(seconds=30)))  # fmt: skip
    return escalate(session, incident_id=incident.id, origin="voice", now=called, sla_hours=24,  # type: ignore[arg-type]
                    contact_id=contact.id, attempt_id=attempt.id, summary="不满意：服务态度",
                    categories=("attitude",))  # fmt: skip


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    root = tmp_path_factory.mktemp("agent-day")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'huifang.db'}")
    seeded = _seed(settings)
    personas = json.dumps({ANSWERS: "satisfied", BUSY: "busy_then_satisfied"})
    server, seeded.url = serve(
        settings.data_dir, settings.database_url, root / "serve.log",
        extra_env={"HUIFANG_SIM_PERSONAS": personas},
    )  # fmt: skip
    yield seeded
    stop(server)


@pytest.fixture(scope="module")
def agent(day: Day) -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the console tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{day.url}/login")
        page.fill("input[name=username]", "agent")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/queue")
        yield page
        browser.close()


def _layout_faults(page: Any) -> dict[str, Any]:
    """What a phone-sized page must not have: sideways scrolling, labels squeezed to a
    character per line, buttons cut off at the edge."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
          const width = document.documentElement.clientWidth;
          const faults = {overflow: document.documentElement.scrollWidth - width, squeezed: [], cut: []};
          for (const el of document.querySelectorAll("a, button, label, th, h1, h2, .pill")) {
            const box = el.getBoundingClientRect();
            if (!box.width || !el.offsetParent) continue;
            const text = (el.innerText || "").trim();
            const size = parseFloat(getComputedStyle(el).fontSize);
            if (text.length >= 2 && box.width < size * 1.6 && box.height > size * 2.5) faults.squeezed.push(text);
            if (el.tagName === "BUTTON" && (box.right > width + 1 || box.left < -1)) faults.cut.push(text);
          }
          return faults;
        }"""
    )


def _shots(page: Any, name: str) -> None:
    """Screenshots at both widths; at 390 px the page must lay out for a phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"agent-day-{name}-{width}.png"), full_page=True)
        if width == 390:
            assert _layout_faults(page) == {"overflow": 0, "squeezed": [], "cut": []}, name
    page.set_viewport_size({"width": 1280, "height": 900})


def _audited(day: Day, action: str) -> list[AuditEvent]:
    runtime = build_runtime(day.settings, migrate=False)
    try:
        with Session(runtime.engine) as session:
            return list(
                session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
            )  # type: ignore[arg-type]
    finally:
        runtime.close()


def _stored(day: Day, kind: type[Any], record_id: int) -> Any:
    runtime = build_runtime(day.settings, migrate=False)
    try:
        with Session(runtime.engine) as session:
            return session.get(kind, record_id)
    finally:
        runtime.close()


def test_the_queue_puts_the_late_case_first_and_filters_searches_and_shows_claims(
    agent: Any, day: Day
) -> None:
    page = agent
    rows = page.locator("#queue-table tbody tr[data-escalation]")
    assert rows.first.get_attribute("data-escalation") == str(day.late)
    assert "已超时" in rows.first.inner_text()
    assert page.locator(f"tr[data-escalation='{day.taken}']").count() == 0
    _shots(page, "queue")
    # filter by source: the 12345 complaint only
    page.select_option("#queue-filters select[name=source]", "12345")
    page.click("#queue-filters button[type=submit]")
    page.wait_for_url(re.compile(r"source=12345"))
    assert [r.get_attribute("data-escalation") for r in rows.all()] == [str(day.hotline)]
    # search by phone: exact, whatever its spelling, and audited
    page.goto(f"{day.url}/queue?phone=138%201234%205678")
    assert [r.get_attribute("data-escalation") for r in rows.all()] == [str(day.voice)]
    assert _audited(day, "queue.search")
    # claimed by others: whose claim it is, and no claim button
    page.click("#queue-views a[data-view=others]")
    row = page.locator(f"tr[data-escalation='{day.taken}']")
    assert "agent2-回访员" in row.inner_text()
    assert row.get_by_role("button", name="认领").count() == 0
    _shots(page, "queue-others")


def test_the_agent_claims_listens_calls_and_issues_a_ticket(agent: Any, day: Day) -> None:
    page = agent
    page.goto(f"{day.url}/queue")
    page.locator(f"tr[data-escalation='{day.voice}']").get_by_role("button", name="认领").click()
    page.wait_for_url(f"**/cases/{day.voice}")
    # the timeline: the call, its answers with their questions' words, the recording
    timeline = page.locator("#timeline")
    assert "请对处警民警的服务态度进行评价" in timeline.inner_text()
    assert "attitude" not in timeline.inner_text()
    assert "未转写：没有语音模型" in timeline.inner_text()
    # listen: the recording plays for the agent holding the claim, and the playback is audited
    source = page.locator("#timeline audio").get_attribute("src")
    played = page.request.get(f"{day.url}{source}")
    assert (played.status, played.headers["content-type"]) == (200, "audio/wav")
    assert _audited(day, "recording.play")
    # the unit the ticket would go to is on the page before anything is issued
    assert page.locator("#responsible-unit").inner_text() == "东门派出所"
    assert "东门派出所" in page.locator("#ticket-goes-to").inner_text()
    # click-to-call: the simulated line rings the agent's phone, the citizen answers
    page.click("#click-to-call")
    expect = _expect()
    expect(page.locator("#call-line")).to_have_text("已接通")
    _shots(page, "case-on-the-line")
    page.select_option("#end-call-form select[name=outcome]", "reached")
    page.click("#end-call")
    page.wait_for_selector("#click-to-call")
    assert "已联系上" in page.locator("#timeline li[data-kind=agent_call]").inner_text()
    page.select_option("#resolve-form select[name=outcome]", "ticket")
    page.fill("#resolve-form textarea[name=findings]", "核实民警处警时态度生硬，已批评教育。")
    page.click("#resolve")
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    assert "督字〔" in page.locator("h1").inner_text()
    steps = page.locator("#timeline").inner_text()
    assert "下发" in steps and "回访员致电" in steps and "请对处警民警的服务态度进行评价" in steps
    _shots(page, "ticket")
    ticket_id = int(page.url.rsplit("/", 1)[1])
    assert _stored(day, Ticket, ticket_id).unit_id is not None


def test_the_agent_calls_a_busy_citizen_and_resolves_the_case_as_explained(
    agent: Any, day: Day
) -> None:
    page = agent
    page.goto(f"{day.url}/queue?view=unclaimed")
    page.locator(f"tr[data-escalation='{day.hotline}']").get_by_role("button", name="认领").click()
    page.wait_for_url(f"**/cases/{day.hotline}")
    page.click("#click-to-call")
    _expect()(page.locator("#call-line")).to_have_text("群众占线")
    page.select_option("#end-call-form select[name=outcome]", "busy")
    page.click("#end-call")
    page.wait_for_selector("#click-to-call")
    page.select_option("#resolve-form select[name=outcome]", "explained")
    page.fill("#resolve-form textarea[name=findings]", "施工属夜间抢修，已向群众解释。")
    page.click("#resolve")
    page.wait_for_url("**/queue")
    assert _stored(day, Escalation, day.hotline).resolution == "explained"
    page.click("#queue-views a[data-view=resolved]")
    assert page.locator(f"tr[data-escalation='{day.hotline}']").count() == 1


def test_the_agent_defers_a_case_to_a_date_and_time(agent: Any, day: Day) -> None:
    page = agent
    page.goto(f"{day.url}/cases/{day.late}")
    page.click("#claim")
    page.wait_for_selector("#defer-form")
    _shots(page, "case")
    comes_back = (datetime.now(day.settings.tz) + timedelta(days=1)).replace(hour=9, minute=30)
    page.fill("#retry-at", comes_back.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#defer-form input[name=note]", "无人接听，明早再拨")
    page.click("#defer")
    page.wait_for_url("**/queue")
    page.click("#queue-views a[data-view=deferred]")
    row = page.locator(f"tr[data-escalation='{day.late}']")
    assert comes_back.strftime("%Y-%m-%d %H:%M") in row.inner_text()
    stored = _stored(day, Escalation, day.late)
    assert stored.retry_after == comes_back.replace(second=0, microsecond=0)
    _shots(page, "queue-deferred")


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect
