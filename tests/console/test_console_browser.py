"""The console in headless Chromium: each role logs in and walks its main path; screenshots
of the main pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlmodel import Session

from huifang.domain.models import Campaign, Escalation, ScriptVersion, Ticket
from huifang.ivr.script import builtin_scripts_dir
from huifang.stats.periods import Period
from huifang.stats.queries import summary
from tests.console.conftest import NOW, Site

pytestmark = pytest.mark.browser
Login = Callable[..., Any]
Shot = Callable[[Any, str], Path]


def test_agent_claims_and_resolves_an_escalation_into_a_ticket(
    login: Login, site: Site, screenshot: Shot
) -> None:
    page = login("agent")
    assert page.url.endswith("/queue")
    row = page.locator(f"tr[data-escalation='{site.complaint_id}']")
    assert "民警态度很差" in row.inner_text()
    screenshot(page, "agent-queue")
    row.get_by_role("button", name="认领").click()
    page.wait_for_url(f"**/cases/{site.complaint_id}")
    # the claim reveals the full number, the recording and its transcript
    assert page.locator("#caller-phone").inner_text() == "+8613812345678"
    assert page.locator("audio").count() == 1
    assert "态度 很 差" in page.locator("pre.transcript").inner_text()
    screenshot(page, "agent-case")
    # no telephony provider that can bridge calls is configured here: the page says so
    page.click("#click-to-call")
    assert page.wait_for_selector(".flash").inner_text() != ""
    page.select_option("select[name=outcome]", "ticket")
    page.fill("textarea[name=findings]", "核实民警处警时态度生硬，已批评教育。")
    page.click("#resolve")
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    assert "督字〔2026〕" in page.locator("h1").inner_text()
    screenshot(page, "agent-ticket-issued")
    with Session(site.engine) as session:
        escalation = session.get(Escalation, site.complaint_id)
        ticket = session.exec(select(Ticket).where(Ticket.escalation_id == site.complaint_id)).one()  # type: ignore[call-overload]
    assert escalation is not None and escalation.state == "resolved"
    assert ticket[0].unit_id == site.data.s1.id


def test_supervisor_acknowledges_and_reports_rectification(
    login: Login, site: Site, screenshot: Shot
) -> None:
    with Session(site.engine) as session:
        ticket = session.exec(
            select(Ticket).where(Ticket.unit_id == site.data.s1.id, Ticket.state == "issued")
        ).first()[0]  # type: ignore[call-overload,index]
    page = login("supervisor")
    assert page.url.endswith("/tickets")
    screenshot(page, "supervisor-tickets")
    page.click(f"tr[data-ticket='{ticket.id}'] a")
    page.click("#acknowledge")
    page.wait_for_selector("#report-form")
    page.fill(
        "#report-form textarea[name=text]", "已组织全所民警学习接处警规范，当事民警书面检查。"
    )
    page.click("#report")
    page.wait_for_selector("#ticket-state:has-text('已整改')")
    timeline = page.locator("#timeline").inner_text()
    assert "签收" in timeline and "已组织全所民警学习" in timeline
    screenshot(page, "supervisor-ticket-rectified")
    with Session(site.engine) as session:
        stored = session.get(Ticket, ticket.id)
    assert stored is not None and stored.state == "rectified"


def test_supervisor_does_not_see_another_branchs_tickets(login: Login, site: Site) -> None:
    page = login("supervisor")
    with Session(site.engine) as session:
        west = session.exec(select(Ticket.id).where(Ticket.unit_id == site.data.s3.id)).first()  # type: ignore[call-overload]
    assert page.locator(f"tr[data-ticket='{west[0]}']").count() == 0


def test_admin_sees_a_validation_error_then_publishes_the_script(
    login: Login, site: Site, screenshot: Shot
) -> None:
    page = login("admin")
    page.goto(f"{site.url}/scripts/edit?name=survey-110.zh-CN")
    original = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
    assert page.input_value("#yaml-text") == original
    page.fill("#yaml-text", original.replace("dimension: attitude", "dimension: manner", 1))
    errors = page.wait_for_selector("#script-errors")
    assert "dimension" in errors.inner_text()
    screenshot(page, "admin-script-error")
    page.fill("#yaml-text", original)
    page.wait_for_selector("#script-valid")
    page.fill("#try-inputs", "1\n1\n1\n1\n1")
    page.click("#try")
    assert "satisfied" in page.wait_for_selector("#try-transcript").inner_text()
    page.click("#publish")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("tr[data-script='survey-110.zh-CN']")
    screenshot(page, "admin-scripts")
    with Session(site.engine) as session:
        names = session.exec(select(ScriptVersion.name)).all()  # type: ignore[call-overload]
    assert ("survey-110.zh-CN",) in [tuple(n) for n in names]


def test_admin_cannot_publish_an_invalid_script(login: Login, site: Site) -> None:
    page = login("admin")
    page.goto(f"{site.url}/scripts/edit?name=second-callback.zh-CN")
    page.fill("#yaml-text", "name: broken\nquestions: 3\n")
    page.click("#publish")
    assert page.locator("#script-errors li").count() >= 1
    with Session(site.engine) as session:
        broken = session.exec(select(ScriptVersion).where(ScriptVersion.name == "broken")).all()  # type: ignore[call-overload]
    assert broken == []


def test_dashboard_shows_the_figures_the_database_holds(
    login: Login, site: Site, screenshot: Shot
) -> None:
    page = login("admin")
    page.goto(f"{site.url}/dashboard?period=2026-11")
    page.wait_for_function("document.body.dataset.chartsReady === 'yes'")
    with Session(site.engine) as session:
        figures = summary(session, Period.month(2026, 11), tz=ZoneInfo("Asia/Shanghai"), now=NOW)

    def shown(name: str) -> str:
        return page.locator(f"[data-figure='{name}']").inner_text().strip()

    assert shown("incidents") == str(figures.incidents)
    assert shown("answered") == str(figures.answered)
    assert shown("satisfaction_rate") == f"{figures.overall.rate * 100:.1f}%"
    assert shown("tickets") == f"{figures.tickets_issued} · {figures.tickets_overdue}"
    assert shown("category_attitude") == str(figures.categories.get("attitude", 0))
    assert page.locator("#trend-chart svg").count() == 1
    assert page.locator("#ranking-chart svg text", has_text="三所").count() >= 1
    assert page.locator("tr[data-unit='BE1']").count() == 1
    screenshot(page, "dashboard")


def test_admin_creates_and_starts_a_campaign_and_watches_it(
    login: Login, site: Site, screenshot: Shot
) -> None:
    page = login("admin")
    page.goto(f"{site.url}/campaigns")
    form = page.locator("#campaign-form")
    form.locator("input[name=name]").fill("浏览器测试任务")
    form.locator("select[name=script_version_id]").select_option(label="dataset-survey v1")
    form.locator("input[name=handled_from]").fill("2026-11-01")
    form.locator("input[name=handled_to]").fill("2026-11-30")
    form.locator("input[name=window_start]").fill("09:00")
    form.locator("input[name=max_attempts]").fill("2")
    # the month's citizens were surveyed already: the form says so, and the admin asks again
    preview = page.locator("#campaign-preview-text")
    expect(preview).to_contain_text("已回访过")
    before = preview.inner_text()
    assert "将新增 0 个回访对象" in before
    form.locator("#resurvey").check()
    expect(preview).not_to_have_text(before)
    assert "将新增 0 " not in page.locator("#campaign-preview-text").inner_text()
    form.locator("button[type=submit]").click()
    row = page.locator("tr[data-campaign]", has_text="浏览器测试任务")
    assert "草稿" in row.inner_text() and "待联系" in row.inner_text()
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="开始").click()
    assert asked and "确定开始" in asked[0]
    assert "进行中" in page.locator("tr[data-campaign]", has_text="浏览器测试任务").inner_text()
    # the progress rows are polled while the page is open
    with page.expect_response("**/campaigns/progress"):
        pass
    screenshot(page, "admin-campaigns")
    with Session(site.engine) as session:
        stored = session.exec(select(Campaign).where(Campaign.name == "浏览器测试任务")).one()[0]  # type: ignore[call-overload]
    assert (stored.state, stored.rules["max_attempts"]) == ("running", 2)
    assert stored.rules["window"] == {"start": "09:00", "end": "20:30"}


def test_inspector_searches_the_audit_log_read_only(
    login: Login, site: Site, screenshot: Shot
) -> None:
    page = login("inspector")
    assert page.url.endswith("/dashboard")
    page.goto(f"{site.url}/audit")
    page.fill("#audit-q", "login")
    page.click("#audit-form button[type=submit]")
    assert "login" in page.locator("#audit-table").inner_text()
    screenshot(page, "inspector-audit")
    page.goto(f"{site.url}/queue")
    assert page.locator("button", has_text="认领").count() == 0
    assert page.goto(f"{site.url}/scripts").status == 403


def test_english_switch_translates_the_console(login: Login, site: Site) -> None:
    page = login("admin")
    page.click("#lang-switch")
    page.wait_for_load_state("networkidle")
    assert page.locator("nav").inner_text().startswith("Dashboard")
    page.goto(f"{site.url}/queue")
    assert "Escalation queue" in page.locator("h1").inner_text()
