"""A unit officer's, an inspector's and an admin's day in Chromium against the real
`huifang serve`: the officer reads the notice of a new ticket (the badge in the menu), signs
for it, asks for an extension, reports with a photo uploaded from the page and prints the
督办单; the inspector finds an entry in the audit log by a word of its details and a date,
and sends a report back to its unit; the admin creates a campaign with the survey script
chosen for them, is asked before it starts (with the count) and finishes it, moves a station
to another branch and creates a user whose role they chose. Screenshots at 390 px and
1280 px wide go to test-artifacts/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.bootstrap import build_runtime
from huifang.domain.audit import record_audit
from huifang.domain.models import Campaign, Ticket, Unit, User
from huifang.domain.scripts import find_script
from huifang.domain.units import create_unit
from huifang.followup.second_callback import second_callback_script
from huifang.followup.tickets import acknowledge, report_rectification
from huifang.settings import Settings
from tests.console.conftest import PASSWORD, SCREENSHOTS
from tests.factories import hashed_password, make_incident, make_ticket
from tests.processes import serve, stop

TZ = ZoneInfo("Asia/Shanghai")
WIDTHS = (390, 1280)


@dataclass
class Day:
    url: str
    settings: Settings
    #: a ticket just issued to the officer's station, and one reported, for the inspector
    new_ticket: int
    reported_ticket: int
    #: the station the admin moves, and the branch it moves to
    west_station: int
    east_branch: int


def _seed(settings: Settings) -> Day:
    now = datetime.now(UTC)
    runtime = build_runtime(settings)
    with Session(runtime.engine, expire_on_commit=False) as session:
        city = create_unit(session, code="C", name="市公安局", level="bureau")
        east = create_unit(session, code="E", name="东城分局", level="branch", parent=city)
        station = create_unit(session, code="E1", name="东门派出所", level="station", parent=east)
        station.duty_phone = "+8613800138000"
        west = create_unit(session, code="W", name="西城分局", level="branch", parent=city)
        west_station = create_unit(
            session, code="W1", name="西门派出所", level="station", parent=west
        )
        password = hashed_password(PASSWORD)
        users = {}
        for name, role, unit in (("officer", "supervisor", station), ("inspector", "inspector", None),
                                 ("admin", "admin", None), ("agent", "agent", None)):  # fmt: skip
            users[name] = User(username=name, display_name=f"{name}-测试", role=role,
                               unit_id=unit.id if unit else None, password_hash=password,
                               created_at=now)  # fmt: skip
            session.add(users[name])
        session.flush()
        second_callback_script(session, "zh-CN", now)
        find_script(session, "survey-110.zh-CN", now)
        yesterday = now - timedelta(days=1)
        for n in range(3):
            make_incident(session, unit=west_station, caller_phone=f"+86137{n:08d}",
                          handled_at=yesterday)  # fmt: skip
        new = make_ticket(session, incident=make_incident(session, unit=station), now=now,
                          agent=users["agent"], findings="出警迟到属实")  # fmt: skip
        reported = make_ticket(session, incident=make_incident(session, unit=station),
                               now=now - timedelta(days=1), agent=users["agent"])  # fmt: skip
        acknowledge(session, reported.id, actor=users["officer"], now=now)
        report_rectification(session, reported.id, actor=users["officer"], text="已整改完毕",
                             now=now)  # fmt: skip
        record_audit(
            session, at=now - timedelta(days=2), actor=users["agent"], action="escalation.resolve",
            target_type="escalation", target_id=99, detail={"findings": "群众反映出警迟缓属实"},
        )  # fmt: skip
        session.commit()
        day = Day("", settings, new.id, reported.id, west_station.id, east.id)  # type: ignore[arg-type]
    runtime.close()
    return day


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    root = tmp_path_factory.mktemp("roles-day")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'huifang.db'}")
    seeded = _seed(settings)
    server, seeded.url = serve(settings.data_dir, settings.database_url, root / "serve.log")
    yield seeded
    stop(server)


def _login(browser: Any, day: Day, username: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{day.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def _shots(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"roles-day-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _stored(day: Day, kind: type[Any], record_id: int) -> Any:
    runtime = build_runtime(day.settings, migrate=False)
    try:
        with Session(runtime.engine) as session:
            return session.get(kind, record_id)
    finally:
        runtime.close()


def test_the_unit_officers_day(browser: Any, day: Day, tmp_path: Path) -> None:
    page = _login(browser, day, "officer")
    badge = page.locator("#notice-badge")
    # both of the station's tickets were issued unread; htmx loads the count (networkidle)
    assert badge.inner_text() == "2"
    page.click("a[href='/notifications']")
    row = page.locator("#notices tr[data-notice]").first
    assert "督办单已下发" in row.inner_text() and "138****8000" in row.inner_text()
    _shots(page, "officer-notices")
    row.get_by_role("button", name="已阅").click()
    assert page.locator("#notices .notice-read").count() == 1
    assert page.locator("#notice-badge").inner_text() == "1"
    # the ticket: sign for it, ask for more time, report with a photo
    page.goto(f"{day.url}/tickets/{day.new_ticket}")
    page.click("#acknowledge")
    page.wait_for_selector("#report-form")
    page.click("#extension summary")
    page.fill("#extension-form textarea[name=reason]", "需协调供电部门更换路灯")
    page.click("#extension-submit")
    assert "待审批" in page.locator("#extensions").inner_text()
    photo = tmp_path / "现场整改.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a photo of the fixed street light")
    page.fill("#report-form textarea[name=text]", "已更换路灯并向群众说明情况。")
    page.set_input_files("#report-files", str(photo))
    page.click("#report")
    page.wait_for_selector("#ticket-state:has-text('已整改')")
    assert "现场整改.jpg" in page.locator("#attachments").inner_text()
    _shots(page, "officer-ticket")
    # the 督办单, printed
    href = page.locator("#ticket-pdf").get_attribute("href")
    printed = page.request.get(f"{day.url}{href}")
    assert (printed.headers["content-type"], printed.body()[:5]) == ("application/pdf", b"%PDF-")
    assert _stored(day, Ticket, day.new_ticket).state == "rectified"


def test_the_inspectors_day(browser: Any, day: Day) -> None:
    page = _login(browser, day, "inspector")
    page.goto(f"{day.url}/audit")
    page.fill("#audit-q", "出警迟缓")
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).astimezone(TZ).date().isoformat()
    page.fill("#audit-from", two_days_ago)
    page.click("#audit-form button[type=submit]")
    page.wait_for_url("**/audit?*")
    assert "findings: 群众反映出警迟缓属实" in page.locator("#audit-table").inner_text()
    assert "共 1 条" in page.locator("#audit-total").inner_text()
    _shots(page, "inspector-audit")
    page.goto(f"{day.url}/tickets/{day.reported_ticket}")
    page.fill("#send-back-form textarea[name=note]", "缺少整改前后的照片")
    page.click("#send-back")
    page.wait_for_selector("#ticket-state:has-text('已签收')")
    assert "缺少整改前后的照片" in page.locator("#timeline").inner_text()
    _shots(page, "inspector-send-back")


def test_the_admins_day(browser: Any, day: Day) -> None:
    page = _login(browser, day, "admin")
    page.goto(f"{day.url}/campaigns")
    assert page.locator("#no-worker").is_visible()
    form = page.locator("#campaign-form")
    chosen = form.locator("select[name=script_version_id] option:checked").inner_text()
    assert chosen.startswith("survey-110.zh-CN")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).astimezone(TZ).date().isoformat()
    form.locator("input[name=name]").fill("管理员的回访任务")
    form.locator("input[name=handled_from]").fill(yesterday)
    form.locator("input[name=handled_to]").fill(yesterday)
    form.locator("button[type=submit]").click()
    row = page.locator("tr[data-campaign]", has_text="管理员的回访任务")
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="开始").click()
    assert "进行中" in page.locator("tr[data-campaign]", has_text="管理员的回访任务").inner_text()
    assert "3 个回访对象" in asked[0]
    page.locator("tr[data-campaign]", has_text="管理员的回访任务").get_by_role(
        "button", name="结束"
    ).click()
    assert "已完成" in page.locator("tr[data-campaign]", has_text="管理员的回访任务").inner_text()
    _shots(page, "admin-campaigns")
    # move a station to another branch
    page.goto(f"{day.url}/units")
    unit_row = page.locator(f"tr[data-unit='{day.west_station}']")
    unit_row.locator("summary").click()
    unit_row.locator("select[name=parent_id]").select_option(str(day.east_branch))
    unit_row.get_by_role("button", name="保存").click()
    assert "西门派出所 ✓" in page.locator(".flash").inner_text()
    _shots(page, "admin-units")
    # a user: the role is chosen, not given
    page.goto(f"{day.url}/users")
    create = page.locator("form[action='/users']")
    assert create.locator("select[name=role]").input_value() == ""
    create.locator("input[name=username]").fill("new-agent")
    create.locator("input[name=password]").fill("a-long-password-1")
    create.locator("select[name=role]").select_option("agent")
    create.locator("#create-user").click()
    assert "new-agent ✓" in page.locator(".flash").inner_text()
    _shots(page, "admin-users")
    assert _stored(day, Unit, day.west_station).parent_id == day.east_branch
    runtime = build_runtime(day.settings, migrate=False)
    try:
        with Session(runtime.engine) as session:
            campaign = session.execute(
                select(Campaign).where(col(Campaign.name) == "管理员的回访任务")
            ).scalar_one()
            user = session.execute(
                select(User).where(col(User.username) == "new-agent")
            ).scalar_one()
        assert (campaign.state, user.role) == ("finished", "agent")
    finally:
        runtime.close()
