"""What every console page shares: the templates, the logged-in user, the language, flash
messages, redirects, the vendored static files, and the login and logout pages.

Rules kept here:
- pages are server-rendered; a form posts, the handler calls a domain service and redirects
  (post/redirect/get), so a reload never repeats an action;
- a page needs a logged-in user with a role allowed for it: anonymous visitors are sent to
  `/login`, other roles get a 403 page; the services check permissions again themselves;
- every form carries the session's CSRF token (`csrf_token` field), htmx requests send it in
  the `X-CSRF-Token` header: `huifang.api.auth` checks it on every unsafe request;
- a domain refusal (Conflict, Forbidden, ValueError …) becomes a flash message on the page
  the user came from, not an error page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from huifang.api.auth import (
    csrf_token,
    get_current_user,
    log_out,
    password_login,
    start_session,
)
from huifang.api.console.i18n import LANG_COOKIE, pick_language, translate
from huifang.api.console.messages import field_label, localize, localize_script_error
from huifang.api.deps import RuntimeDep, SessionDep
from huifang.domain.models import User
from huifang.domain.users import LoginRateLimited, LoginRefused, Role
from huifang.errors import HuifangError

API_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = API_DIR / "static"
FLASH_COOKIE = "flash"

#: the first page of each role after login
HOME = {
    Role.admin: "/dashboard",
    Role.agent: "/queue",
    Role.supervisor: "/tickets",
    Role.inspector: "/dashboard",
}
#: the navigation of each role: (path, label key)
NAV: dict[str, list[tuple[str, str]]] = {
    Role.admin: [
        ("/dashboard", "nav_dashboard"), ("/queue", "nav_queue"), ("/review", "nav_review"),
        ("/tickets", "nav_tickets"), ("/second-callbacks", "nav_second_callbacks"),
        ("/scripts", "nav_scripts"), ("/campaigns", "nav_campaigns"), ("/units", "nav_units"),
        ("/users", "nav_users"), ("/audit", "nav_audit"), ("/tokens", "nav_tokens"),
        ("/notifications", "nav_notifications"),
    ],
    Role.agent: [
        ("/queue", "nav_queue"), ("/review", "nav_review"),
        ("/second-callbacks", "nav_second_callbacks"), ("/tickets", "nav_tickets"),
        ("/tokens", "nav_tokens"),
    ],
    Role.supervisor: [
        ("/tickets", "nav_tickets"), ("/dashboard", "nav_dashboard"), ("/tokens", "nav_tokens"),
        ("/notifications", "nav_notifications"),
    ],
    Role.inspector: [
        ("/dashboard", "nav_dashboard"), ("/queue", "nav_queue"), ("/review", "nav_review"),
        ("/tickets", "nav_tickets"), ("/second-callbacks", "nav_second_callbacks"),
        ("/audit", "nav_audit"), ("/tokens", "nav_tokens"), ("/notifications", "nav_notifications"),
    ],
}  # fmt: skip

router = APIRouter(include_in_schema=False)


@cache
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(API_DIR / "templates"))


class LoginRequired(HTTPException):
    def __init__(self, next_path: str) -> None:
        super().__init__(303, headers={"Location": f"/login?next={quote(next_path)}"})


#: form fields never carried through a login: secrets, and the stale session's token
_NOT_CARRIED = ("csrf_token", "password", "new_password", "token")


class LoginToContinue(HTTPException):
    """A form was posted without a live session: the login page carries the form's fields
    (in the page, never in the URL) and, after login, offers the same form again filled in
    (the user submits it, with the new session's CSRF token and the Origin check)."""

    def __init__(self, action: str, fields: list[tuple[str, str]]) -> None:
        super().__init__(401)
        self.action = action
        self.fields = [(k, v) for k, v in fields if k not in _NOT_CARRIED]


def _typed_text(name: str, value: str, lang: str) -> str | None:
    """The label of a field the user typed words into (shown again to check); None for a
    choice's code or an id (carried unseen)."""
    if re.fullmatch(r"[\w.:+-]*", value, re.ASCII):
        return None
    return field_label(name, lang)


def login_to_continue_page(request: Request, exc: LoginToContinue) -> HTMLResponse:
    carried = [("carry_name", k) for k, _ in exc.fields]
    values = [("carry_value", v) for _, v in exc.fields]
    return render(
        request, "login.html", None, 401, next=exc.action, error=translate(
            "session_expired_kept", language(request)
        ), carried=list(zip(carried, values, strict=True)),
    )  # fmt: skip


def language(request: Request) -> str:
    runtime = request.app.state.runtime
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        runtime.settings.language,
    )


@dataclass(frozen=True)
class _Submitted:
    csrf: str = ""
    #: the form's text fields, kept for a login in the middle of an action
    fields: tuple[tuple[str, str], ...] = ()


async def _form_csrf(request: Request) -> _Submitted:
    if request.method == "GET":
        return _Submitted()
    header = request.headers.get("x-csrf-token")
    if header or request.headers.get("hx-request"):
        return _Submitted(header or "")
    form = await request.form()
    fields = tuple((k, v) for k, v in form.multi_items() if isinstance(v, str))
    value = form.get("csrf_token")
    return _Submitted(value if isinstance(value, str) else "", fields)


def console_user(*roles: Role) -> Callable[..., User]:
    """A dependency: the logged-in user when their role is one of `roles`."""
    allowed = frozenset(roles)

    def dependency(
        request: Request, session: SessionDep, runtime: RuntimeDep,
        submitted: Annotated[_Submitted, Depends(_form_csrf)],
    ) -> User:  # fmt: skip
        try:
            user = get_current_user(request, session, runtime, submitted.csrf)
        except HTTPException as exc:
            if exc.status_code != 401:
                raise
            if request.headers.get("hx-request"):
                # htmx follows this header to the login page of the page the user is on
                back = urlsplit(request.headers.get("hx-current-url", "")).path or "/"
                raise HTTPException(
                    401, headers={"HX-Redirect": f"/login?next={quote(back)}"}
                ) from None
            if request.method != "GET":
                raise LoginToContinue(request.url.path, list(submitted.fields)) from None
            raise LoginRequired(request.url.path) from None
        if user.role not in allowed:
            raise HTTPException(403, detail=f"needs role: {', '.join(sorted(allowed))}")
        return user

    return dependency


def page_user(request: Request) -> User | None:
    """The logged-in user of a page that failed (for its menu); None when there is none or
    the database cannot say."""
    runtime = request.app.state.runtime
    try:
        with Session(runtime.engine, expire_on_commit=False) as session:
            # reading the user for the menu changes nothing: the session's own token passes
            return get_current_user(request, session, runtime, csrf_token(request))
    except (HTTPException, SQLAlchemyError):
        return None


def render(
    request: Request, template: str, user: User | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    lang = language(request)
    runtime = request.app.state.runtime
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))
    if flash.startswith(_REFUSAL_MARK):
        flash = localize(flash.removeprefix(_REFUSAL_MARK), lang)
    for key in ("refused", "error", "message"):  # a refusal's words, in the page's language
        if isinstance(context.get(key), str):
            context[key] = localize(context[key], lang)
    response = templates().TemplateResponse(
        request,
        template,
        {
            "user": user,
            "lang": lang,
            "t": lambda key: translate(key, lang),
            "say": lambda message: localize(message, lang),
            "say_script": lambda message: localize_script_error(message, lang),
            "nav": NAV.get(user.role, []) if user else [],
            "csrf_token": csrf_token(request),
            "flash": flash,
            "now": runtime.clock.now(),
            "tz": runtime.settings.tz,
            "local": lambda moment: _local(moment, runtime.settings.tz),
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def form_day(value: str) -> date | None:
    """A date input's day; none when empty or not a day (a browser sends only days)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _local(moment: datetime | None, tz: Any) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "—"


def local_input(moment: datetime, tz: Any) -> str:
    """`moment` as a datetime-local input's value in the deployment's time zone."""
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def htmx_redirect(path: str, flash: str = "") -> Response:
    """What an htmx form gets instead of a redirect: htmx loads `path` (an XHR would follow a
    303 by itself and swap the next page into the form)."""
    response = Response(status_code=200, headers={"HX-Redirect": path})
    _set_flash(response, flash)
    return response


class Refusal(str):
    """A refusal's message as the domain worded it: the page that shows it puts it in the
    reader's language (messages.localize); other flash messages are shown as they are."""


#: marks a refusal in the flash cookie
_REFUSAL_MARK = "\x1e"


def redirect(path: str, flash: str = "") -> RedirectResponse:
    """Post/redirect/get, optionally with a one-time message for the next page."""
    response = RedirectResponse(path, status_code=303)
    _set_flash(response, flash)
    return response


def _set_flash(response: Response, flash: str) -> None:
    """A one-time message for the next page (a refusal marked as one)."""
    if flash:
        value = _REFUSAL_MARK + flash if isinstance(flash, Refusal) else flash
        response.set_cookie(FLASH_COOKIE, quote(value), max_age=60, samesite="lax", path="/")


@contextmanager
def refusals_as_flash(session: Session, holder: list[str]) -> Iterator[None]:
    """Collect a domain refusal's message instead of raising it (the page shows it); the
    refused action's writes, if any, are rolled back."""
    try:
        yield
    except (HuifangError, ValueError) as exc:
        session.rollback()
        holder.append(Refusal(exc))


# --- static files, login, logout, home


@router.get("/static/{path:path}")
def static_file(path: str) -> FileResponse:
    try:
        target = (STATIC_DIR / path).resolve()
        found = target.is_file() and STATIC_DIR in target.parents
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system
        found = False
    if not found:
        raise HTTPException(404, detail="no such file")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/login")
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "login.html", None, next=next, error="")


@router.post("/login")
def login_submit(
    request: Request, session: SessionDep, runtime: RuntimeDep,
    username: Annotated[str, Form()], password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
    carry_name: Annotated[list[str] | None, Form()] = None,
    carry_value: Annotated[list[str] | None, Form()] = None,
) -> Response:  # fmt: skip
    carried = list(zip(carry_name or [], carry_value or [], strict=False))
    again = [(("carry_name", k), ("carry_value", v)) for k, v in carried]
    try:
        user = password_login(request, session, runtime, username, password)
    except LoginRateLimited as exc:
        return render(request, "login.html", None, 429, next=next, error=str(exc), carried=again)
    except LoginRefused:
        lang = language(request)
        return render(
            request, "login.html", None, 401, next=next, error=translate("login_failed", lang),
            carried=again,
        )  # fmt: skip
    # only a path on this site, never an absolute URL an attacker slipped in
    local = next.startswith("/") and not next.startswith("//") and "\\" not in next
    target = next if local else HOME[Role(user.role)]
    response: Response
    if carried and local:
        # the interrupted form again, filled in, for the user to submit in the new session
        cookie = Response()
        csrf = start_session(cookie, runtime, user)
        response = render(
            request, "resume.html", user, action=target, csrf_token=csrf,
            fields=[(k, v, _typed_text(k, v, language(request))) for k, v in carried],
        )  # fmt: skip
        response.headers.append("set-cookie", cookie.headers["set-cookie"])
        return response
    response = RedirectResponse(target, status_code=303)
    start_session(response, runtime, user)
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, runtime: RuntimeDep,
    _user: Annotated[User, Depends(console_user(*Role))],
) -> Response:  # fmt: skip
    response = RedirectResponse("/login", status_code=303)
    log_out(request, response, session, runtime)
    return response


@router.get("/")
def home(user: Annotated[User, Depends(console_user(*Role))]) -> Response:
    return RedirectResponse(HOME.get(Role(user.role), "/login"), status_code=303)
