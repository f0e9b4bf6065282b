"""The API tokens page: everyone sees and revokes their own tokens and creates one for
themselves; an admin sees everyone's and creates tokens for any account (integrations
included). `huifang.domain.api_tokens` decides who may do what.

A new token is shown once, on the page answering the form (not after a redirect: it must
not travel in a cookie or a URL); only its hash is kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from huifang.api.console.web import console_user, redirect, refusals_as_flash, render
from huifang.api.deps import ClockDep, SessionDep
from huifang.api.routes.common import RecordId
from huifang.domain.api_tokens import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    issue_api_token,
    list_api_tokens,
    revoke_api_token,
    token_state,
)
from huifang.domain.models import User
from huifang.domain.users import Role, get_user, list_users

router = APIRouter(include_in_schema=False)
Anyone = Annotated[User, Depends(console_user(*Role))]


def _page(
    request: Request, session: SessionDep, clock: ClockDep, user: User, *,
    new_token: str = "", error: str = "", status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    is_admin = user.role == Role.admin
    rows = list_api_tokens(session, actor=user, owner_id=None if is_admin else user.id)
    people = {u.id: u for u in list_users(session)} if is_admin else {user.id: user}
    now = clock.now()
    return render(
        request, "tokens.html", user, status_code, tokens=rows, people=people,
        states={row.id: token_state(row, now) for row in rows}, new_token=new_token,
        error=error, default_days=DEFAULT_LIFETIME.days, max_days=MAX_LIFETIME.days,
    )  # fmt: skip


@router.get("/tokens")
def tokens_page(
    request: Request, session: SessionDep, clock: ClockDep, user: Anyone
) -> HTMLResponse:
    return _page(request, session, clock, user)


@router.post("/tokens")
def token_create(
    request: Request, session: SessionDep, clock: ClockDep, user: Anyone,
    name: Annotated[str, Form()], days: Annotated[int, Form(ge=1, le=MAX_LIFETIME.days)],
    owner_id: Annotated[str, Form()] = "",
) -> HTMLResponse:  # fmt: skip
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        owner = get_user(session, int(owner_id)) if owner_id.isdigit() else user
        issued = issue_api_token(
            session, owner, name, clock.now(), actor=user, lifetime=timedelta(days=days)
        )
        return _page(request, session, clock, user, new_token=issued.token, status_code=201)
    return _page(request, session, clock, user, error=refused[0], status_code=422)


@router.post("/tokens/{token_id}/revoke")
def token_revoke(
    session: SessionDep, clock: ClockDep, user: Anyone, token_id: RecordId
) -> Response:
    refused: list[str] = []
    with refusals_as_flash(session, refused):
        row = revoke_api_token(session, token_id, actor=user, now=clock.now())
        return redirect("/tokens", f"{row.name} ✓")
    return redirect("/tokens", refused[0])
