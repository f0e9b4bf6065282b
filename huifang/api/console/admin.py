"""The admin's pages: call scripts (YAML editor with live validation, try as text, listen to a
prompt, publish), campaigns (create from incidents with their calling rules, start, pause,
resume, live progress),
units and users. Admins only.

The editor validates with `huifang.ivr.script.validate_script_text` on every pause in typing
(htmx), plays the script with the pure interpreter for "try", and publishes with
`huifang.domain.scripts.publish_script`, which refuses an invalid text on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from huifang.api.console.i18n import translate
from huifang.api.console.web import console_user, language, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.routes.common import RecordId
from huifang.dialer.planning import new_campaign
from huifang.domain import campaigns as campaign_service
from huifang.domain.models import Campaign, ScriptVersion, User
from huifang.domain.scripts import publish_script
from huifang.domain.states import ContactState
from huifang.domain.units import add_unit, edit_unit, get_unit, list_units
from huifang.domain.users import Role, create_user, list_users, update_user
from huifang.domain.workers import last_seen, worker_running
from huifang.ivr.script import ScriptInvalid, builtin_scripts_dir, validate_script_text
from huifang.phones import normalize_phone
from huifang.settings import Settings
from huifang.stats.queries import campaign_progress

router = APIRouter(include_in_schema=False)
Admin = Annotated[User, Depends(console_user(Role.admin))]

#: the citizen's side of "try it", one line per input: keys, `say:words`, `hangup`, or empty
TRY_HELP = "1 · say:很满意 · hangup"


# --- scripts


@router.get("/scripts")
def scripts_page(request: Request, session: SessionDep, user: Admin) -> HTMLResponse:
    versions = _script_versions(session)
    builtins = sorted(p.stem for p in builtin_scripts_dir().glob("*.yaml"))
    return render(request, "scripts.html", user, versions=versions, builtins=builtins)


def _script_versions(session: Session) -> Sequence[ScriptVersion]:
    """Every published version, by script name, newest version first."""
    return (
        session.execute(
            select(ScriptVersion).order_by(
                col(ScriptVersion.name), col(ScriptVersion.version).desc()
            )
        )
        .scalars()
        .all()
    )


def _latest_source(session: Session, name: str) -> str:
    row = session.execute(
        select(col(ScriptVersion.source_yaml))
        .where(col(ScriptVersion.name) == name)
        .order_by(col(ScriptVersion.version).desc())
    ).first()
    if row:
        return str(row[0])
    builtin = builtin_scripts_dir() / f"{name}.yaml"
    if name and builtin.is_file() and builtin.parent == builtin_scripts_dir():
        return builtin.read_text(encoding="utf-8")
    return ""


@router.get("/scripts/edit")
def script_editor(
    request: Request, session: SessionDep, user: Admin, name: str = ""
) -> HTMLResponse:
    text = _latest_source(session, name)
    return render(
        request, "script_edit.html", user, name=name, yaml_text=text,
        errors=validate_script_text(text) if text else [], try_help=TRY_HELP,
    )  # fmt: skip


@router.post("/scripts/validate")
def script_validate(
    request: Request, user: Admin, yaml_text: Annotated[str, Form()] = ""
) -> HTMLResponse:
    return render(request, "script_validation.html", user, errors=validate_script_text(yaml_text))


@router.post("/scripts/try")
def script_try(
    request: Request, user: Admin,
    yaml_text: Annotated[str, Form()] = "", inputs: Annotated[str, Form()] = "",
) -> HTMLResponse:  # fmt: skip
    errors = validate_script_text(yaml_text)
    lines = [] if errors else _play(yaml_text, inputs.splitlines())
    return render(request, "script_try.html", user, errors=errors, lines=lines)


def _play(yaml_text: str, inputs: list[str]) -> list[str]:
    """The call as text: what the script says and waits for, and each typed input."""
    from huifang.ivr.actions import INPUT_ACTIONS
    from huifang.ivr.cli import describe, typed_event
    from huifang.ivr.interpreter import Session as Call
    from huifang.ivr.script import parse_script
    from huifang.ivr.template import sample_variables

    script = parse_script(yaml_text)
    call = Call(script, sample_variables(script.language.value))
    actions = call.start()
    lines: list[str] = []
    pending = iter(inputs)
    while True:
        lines.extend(describe(action) for action in actions)
        if call.finished or not actions or not isinstance(actions[-1], INPUT_ACTIONS):
            break
        typed = next(pending, None)
        # out of inputs: the citizen hangs up, as the terminal version does at end of input
        lines.append(f"> {typed}" if typed is not None else "> (hang up)")
        actions = call.feed(typed_event(f"{typed}\n" if typed is not None else "", actions[-1]))
    result = call.result()
    lines.append(f"= {result.outcome.value}{' · escalate' if result.escalate else ''}")
    return lines


@router.post("/scripts/listen")
def script_listen(
    request: Request, settings: SettingsDep, user: Admin,
    text: Annotated[str, Form()], language: Annotated[str, Form()] = "zh-CN",
) -> HTMLResponse:  # fmt: skip
    from huifang.ivr.prompts import PromptRenderError, render_text

    try:
        audio = render_text(text, language, settings.prompts_dir)
    except (PromptRenderError, ValueError) as exc:
        return render(request, "script_listen.html", user, audio_name="", error=str(exc))
    return render(request, "script_listen.html", user, audio_name=audio.name, error="")


@router.get("/scripts/prompts/{filename}")
def prompt_audio(settings: SettingsDep, _user: Admin, filename: str) -> FileResponse:
    target = (settings.prompts_dir / filename).resolve()
    if target.parent != settings.prompts_dir.resolve() or not target.is_file():
        raise HTTPException(404, detail="no such prompt")
    return FileResponse(target, media_type="audio/wav")


@router.post("/scripts/publish")
def script_publish(
    request: Request, session: SessionDep, clock: ClockDep, user: Admin,
    yaml_text: Annotated[str, Form()], name: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    try:
        version = publish_script(session, yaml_text, clock.now(), by=user)
    except ScriptInvalid as exc:
        return render(
            request, "script_edit.html", user, 422, name=name, yaml_text=yaml_text,
            errors=exc.errors, try_help=TRY_HELP,
        )  # fmt: skip
    return redirect("/scripts", f"{version.name} v{version.version}")


# --- campaigns


@router.get("/campaigns")
def campaigns_page(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Admin
) -> HTMLResponse:
    rows = session.execute(select(Campaign).order_by(col(Campaign.id).desc())).scalars().all()
    # a survey campaign asks the survey: the second-callback script belongs to the rounds
    # follow-up runs on its own, and is no choice here
    versions = [v for v in _script_versions(session) if not v.name.startswith("second-callback")]
    default_script = next(
        (v.id for v in versions if v.name == f"survey-110.{settings.language}"),
        versions[0].id if versions else None,
    )
    return render(
        request, "campaigns.html", user, campaigns=rows, versions=versions,
        default_script=default_script,
        progress=campaign_progress(session, [c.id for c in rows if c.id is not None]),
        contact_states=[s.value for s in ContactState], defaults=settings,
        worker_running=worker_running(session, clock.now()), worker_seen=last_seen(session),
    )  # fmt: skip


@router.get("/campaigns/progress")
def campaigns_progress(request: Request, session: SessionDep, user: Admin) -> HTMLResponse:
    """The progress rows alone, polled by htmx while the page is open."""
    rows = session.execute(select(Campaign).order_by(col(Campaign.id).desc())).scalars().all()
    return render(
        request, "campaign_rows.html", user, campaigns=rows,
        progress=campaign_progress(session, [c.id for c in rows if c.id is not None]),
        contact_states=[s.value for s in ContactState],
    )  # fmt: skip


class CampaignForm:
    """The campaign form's fields, as the create and the preview requests both post them."""

    def __init__(
        self,
        name: Annotated[str, Form()], script_version_id: Annotated[int, Form()],
        handled_from: Annotated[date, Form()], handled_to: Annotated[date, Form()],
        channels: Annotated[str, Form()] = "voice",
        window_start: Annotated[str, Form()] = "", window_end: Annotated[str, Form()] = "",
        max_attempts: Annotated[int | None, Form()] = None,
        call_on_weekends: Annotated[bool, Form()] = False,
        call_on_holidays: Annotated[bool, Form()] = False,
        resurvey: Annotated[bool, Form()] = False,
    ) -> None:  # fmt: skip
        rules: dict[str, Any] = {
            "call_on_weekends": call_on_weekends,
            "call_on_holidays": call_on_holidays,
            "window": {k: v for k, v in (("start", window_start), ("end", window_end)) if v},
        }
        if max_attempts is not None:
            rules["max_attempts"] = max_attempts
        self.name, self.script_version_id, self.channels = name, script_version_id, channels
        self.handled_from, self.handled_to = handled_from, handled_to
        self.rules, self.resurvey = rules, resurvey

    def plan(self, settings: Settings) -> campaign_service.CampaignPlan:
        selection = campaign_service.IncidentSelection.handled_between(
            self.handled_from, self.handled_to, settings.tz
        )
        return campaign_service.CampaignPlan(
            name=self.name, script_version_id=self.script_version_id, selection=selection,
            channels=self.channels, rules=self.rules, resurvey=self.resurvey,
        )  # fmt: skip


def contacts_summary(contacts: campaign_service.ContactPlan, lang: str) -> str:
    """The plan in the console's words: how many it adds, how many it leaves out and why."""
    left_out = [
        f"{translate('skip_' + reason, lang)} {contacts.skipped[reason]}"
        for reason in campaign_service.SKIP_REASONS
        if contacts.skipped.get(reason)
    ]
    text = translate("preview_adds", lang).format(adds=contacts.adds)
    if left_out:
        text += translate("preview_skips", lang).format(
            skips=sum(contacts.skipped.values()),
            reasons=translate("list_separator", lang).join(left_out),
        )
    return text


@router.post("/campaigns/preview")
def campaign_preview(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Admin,
    form: Annotated[CampaignForm, Depends()],
) -> HTMLResponse:  # fmt: skip
    """What creating the campaign would do, shown under the form as it is filled in."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        created = new_campaign(
            session, form.plan(settings), settings, now=clock.now(), by=user, dry_run=True
        )
        summary = contacts_summary(created.contacts, language(request))
        return render(request, "campaign_preview.html", user, summary=summary, error="")
    return render(request, "campaign_preview.html", user, summary="", error=refused[0])


@router.post("/campaigns")
def campaign_create(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Admin,
    form: Annotated[CampaignForm, Depends()],
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        created = new_campaign(session, form.plan(settings), settings, now=clock.now(), by=user)
        session.commit()  # before the redirect: the next page lists it
        assert created.campaign is not None
        summary = contacts_summary(created.contacts, language(request))
        return redirect("/campaigns", f"{created.campaign.name} ✓ {summary}")
    return redirect("/campaigns", refused[0])


@router.post("/campaigns/{campaign_id}/{move}")
def campaign_move(
    session: SessionDep, clock: ClockDep, user: Admin, campaign_id: RecordId, move: str
) -> Response:
    refused: list[str] = []
    now = clock.now()
    with refusals_as_flash(session, refused):
        if move == "start":
            queued = campaign_service.start_campaign(session, campaign_id, now=now, by=user)
            return redirect("/campaigns", f"#{campaign_id} ✓ {queued}")
        if move == "pause":
            campaign_service.pause_campaign(session, campaign_id, now=now, by=user)
        elif move == "resume":
            campaign_service.resume_campaign(session, campaign_id, now=now, by=user)
        elif move == "finish":
            campaign_service.finish_campaign(session, campaign_id, now=now, by=user)
        else:
            raise HTTPException(404, detail=f"no such action: {move}")
    return redirect("/campaigns", refused[0] if refused else "")


# --- units and users


@router.get("/units")
def units_page(request: Request, session: SessionDep, user: Admin) -> HTMLResponse:
    return render(request, "units.html", user, units=list_units(session))


@router.post("/units")
def unit_create(
    session: SessionDep, clock: ClockDep, user: Admin,
    code: Annotated[str, Form()], name: Annotated[str, Form()], level: Annotated[str, Form()],
    parent_id: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        parent = get_unit(session, int(parent_id)) if parent_id.isdigit() else None
        add_unit(
            session, code=code.strip(), name=name.strip(), level=level, parent=parent,
            actor=user, now=clock.now(),
        )  # fmt: skip
    return redirect("/units", refused[0] if refused else f"{name} ✓")


@router.post("/units/{unit_id}")
def unit_update(
    session: SessionDep, settings: SettingsDep, clock: ClockDep, user: Admin, unit_id: RecordId,
    code: Annotated[str, Form()], name: Annotated[str, Form()], level: Annotated[str, Form()],
    parent_id: Annotated[str, Form()] = "", duty_phone: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """The edit form of one unit: "—" as the parent moves it to the top."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        parent = get_unit(session, int(parent_id)) if parent_id.isdigit() else None
        phone = normalize_phone(duty_phone, settings.phone_region) if duty_phone.strip() else ""
        unit = edit_unit(
            session, unit_id, actor=user, now=clock.now(), code=code, name=name, level=level,
            parent=parent, duty_phone=phone,
        )  # fmt: skip
        return redirect("/units", f"{unit.name} ✓")
    return redirect("/units", refused[0])


@router.get("/users")
def users_page(request: Request, session: SessionDep, user: Admin) -> HTMLResponse:
    units = {u.id: u for u in list_units(session)}
    return render(
        request, "users.html", user, users=list_users(session), units=units,
        roles=[r.value for r in Role],
    )  # fmt: skip


@router.post("/users")
def user_create(
    session: SessionDep, clock: ClockDep, admin: Admin,
    username: Annotated[str, Form()], role: Annotated[str, Form()],
    password: Annotated[str, Form()], display_name: Annotated[str, Form()] = "",
    unit_id: Annotated[str, Form()] = "", phone: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        create_user(
            session, username=username, role=role, password=password, now=clock.now(),
            unit_id=int(unit_id) if unit_id else None, display_name=display_name, phone=phone,
            actor=admin,
        )  # fmt: skip
    return redirect("/users", refused[0] if refused else f"{username} ✓")


@router.post("/users/{user_id}")
def user_update(
    session: SessionDep, clock: ClockDep, admin: Admin, user_id: RecordId,
    role: Annotated[str, Form()], display_name: Annotated[str, Form()] = "",
    unit_id: Annotated[str, Form()] = "", phone: Annotated[str, Form()] = "",
    active: Annotated[bool, Form()] = False, password: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """The edit form of one user: an unticked "active" deactivates, an empty password keeps
    the old one, "—" as the unit keeps the user's unit."""
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        user = update_user(
            session, user_id, actor=admin, now=clock.now(), role=role,
            unit_id=int(unit_id) if unit_id else None, display_name=display_name, phone=phone,
            active=active, password=password or None,
        )  # fmt: skip
        return redirect("/users", f"{user.username} ✓")
    return redirect("/users", refused[0])
