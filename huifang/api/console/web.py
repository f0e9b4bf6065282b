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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from huifang.api.auth import (
    csrf_token,
    get_current_user,
    log_out,
    password_login,
    start_session,
)
from huifang.api.console.i18n import LANG_COOKIE, pick_language, translate
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


def language(request: Request) -> str:
    runtime = request.app.state.runtime
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        runtime.settings.language,
    )


async def _form_csrf(request: Request) -> str:
    if request.method == "GET":
        return ""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    value = (await request.form()).get("csrf_token")
    return value if isinstance(value, str) else ""


def console_user(*roles: Role) -> Callable[..., User]:
    """A dependency: the logged-in user when their role is one of `roles`."""
    allowed = frozenset(roles)

    def dependency(
        request: Request, session: SessionDep, runtime: RuntimeDep,
        submitted: Annotated[str, Depends(_form_csrf)],
    ) -> User:  # fmt: skip
        try:
            user = get_current_user(request, session, runtime, submitted)
        except HTTPException as exc:
            if exc.status_code == 401:
                raise LoginRequired(request.url.path) from None
            raise
        if user.role not in allowed:
            raise HTTPException(403, detail=f"needs role: {', '.join(sorted(allowed))}")
        return user

    return dependency


def render(
    request: Request, template: str, user: User | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    lang = language(request)
    runtime = request.app.state.runtime
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))
    response = templates().TemplateResponse(
        request,
        template,
        {
            "user": user,
            "lang": lang,
            "t": lambda key: translate(key, lang),
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
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, samesite="lax", path="/")
    return response


def redirect(path: str, flash: str = "") -> RedirectResponse:
    """Post/redirect/get, optionally with a one-time message for the next page."""
    response = RedirectResponse(path, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, samesite="lax", path="/")
    return response


@contextmanager
def refusals_as_flash(session: Session, holder: list[str]) -> Iterator[None]:
    """Collect a domain refusal's message instead of raising it (the page shows it); the
    refused action's writes, if any, are rolled back."""
    try:
        yield
    except (HuifangError, ValueError) as exc:
        session.rollback()
        holder.append(str(exc))


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
) -> Response:  # fmt: skip
    try:
        user = password_login(request, session, runtime, username, password)
    except LoginRateLimited as exc:
        return render(request, "login.html", None, 429, next=next, error=str(exc))
    except LoginRefused:
        lang = language(request)
        return render(
            request, "login.html", None, 401, next=next, error=translate("login_failed", lang)
        )
    # only a path on this site, never an absolute URL an attacker slipped in
    target = next if next.startswith("/") and not next.startswith("//") else HOME[Role(user.role)]
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
