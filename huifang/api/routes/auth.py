"""Console login and logout: a signed session cookie plus the CSRF token to echo back."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from huifang.api.auth import CurrentUser, end_session, log_out, password_login, start_session
from huifang.api.deps import RuntimeDep, SessionDep
from huifang.api.routes.users import UserPublic
from huifang.domain.users import LoginRateLimited, LoginRefused, end_sessions

router = APIRouter(prefix="/auth", tags=["auth"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginResult(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="echo in X-CSRF-Token on every unsafe request")


@router.post(
    "/login",
    response_model=LoginResult,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "rate limited"}},
)
def login_endpoint(
    body: Credentials,
    request: Request,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
) -> LoginResult:
    """Log in with a password. 429 with Retry-After when the account or the client address
    has too many recent failed logins (the address is refused before its password is
    checked)."""
    try:
        user = password_login(request, session, runtime, body.username, body.password)
    except LoginRateLimited as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=str(exc),
            headers={"Retry-After": str(int(exc.retry_after.total_seconds()))},
        ) from None
    except LoginRefused as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc)) from None
    csrf = start_session(response, runtime, user)
    return LoginResult(user=UserPublic.of(user), csrf_token=csrf)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout_endpoint(
    request: Request,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    _user: CurrentUser,
) -> None:
    """End this console session on the server: a kept copy of its cookie is refused too."""
    log_out(request, response, session, runtime)


@router.post("/logout-everywhere", status_code=status.HTTP_204_NO_CONTENT)
def logout_everywhere_endpoint(
    response: Response, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
) -> None:
    """End all of the current user's console sessions, this one included, and revoke their
    API tokens."""
    end_sessions(session, user, runtime.clock.now(), actor=user)
    end_session(response)


@router.get("/me", response_model=UserPublic)
def me_endpoint(user: CurrentUser) -> UserPublic:
    return UserPublic.of(user)
