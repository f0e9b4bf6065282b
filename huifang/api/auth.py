"""Who is calling: the console's session cookie or an integration's bearer token; roles; CSRF.

Rules kept here:
- a request is authenticated by `Authorization: Bearer <api token>` or by the signed session
  cookie (itsdangerous; user id + CSRF token + expiry), nothing else;
- a cookie-authenticated request with an unsafe method must echo the session's CSRF token in
  the `X-CSRF-Token` header or a `csrf_token` form field; bearer requests need none, since a
  browser never attaches a bearer token on its own;
- the cookie is HttpOnly, SameSite=Lax, and Secure when `Settings.cookie_secure` (set, or
  an https public base URL);
- a session ends early when its user's `sessions_valid_from` is at or after the second the
  cookie was signed (logout everywhere, an admin's revocation), and on logout: the session
  (known by the sha256 of its CSRF token, random per login) is recorded as ended, so a copy
  of the cookie kept elsewhere is refused too; cookies are signed with the
  runtime's clock, so tests move time as they like; ending a user's sessions also revokes
  their API tokens (`users.end_sessions`), which end besides when revoked or expired;
- a password login first reserves its attempt in the database's login limits (per account
  at an address, per account, per address: `huifang.domain.login_throttle`), so a refused
  try costs no hash and simultaneous tries cannot overrun a limit;
- with no `session_secret` configured, a random per-process secret signs cookies (sessions
  end at restart and do not cross replicas) and a warning says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, status
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from sqlmodel import Session

from huifang.api.deps import RuntimeDep, SessionDep
from huifang.bootstrap import Runtime
from huifang.clock import Clock
from huifang.domain import login_throttle, users
from huifang.domain.api_tokens import user_for_token
from huifang.domain.models import User
from huifang.domain.users import LoginRefused, Role, login

SESSION_COOKIE = "huifang_session"
SESSION_MAX_AGE = timedelta(hours=12)
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SERIALIZER_KEY = "session_serializer"

log = logging.getLogger(__name__)


@cache
def _process_secret() -> str:
    log.warning(
        "HUIFANG_SESSION_SECRET is not set: console sessions are signed with a random "
        "per-process secret and end when the process restarts"
    )
    return secrets.token_urlsafe(32)


class _ClockSigner(TimestampSigner):
    """Signs with the runtime's clock, so signing times compare with the stored ones."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock.now().timestamp())


def _serializer(runtime: Runtime) -> URLSafeTimedSerializer:
    serializer = runtime.services.get(_SERIALIZER_KEY)
    if serializer is None:
        secret = runtime.settings.session_secret.get_secret_value() or _process_secret()
        serializer = URLSafeTimedSerializer(
            secret,
            salt="huifang-session",
            signer=_ClockSigner,
            signer_kwargs={"clock": runtime.clock},
        )
        runtime.services[_SERIALIZER_KEY] = serializer
    return serializer


def start_session(response: Response, runtime: Runtime, user: User) -> str:
    """Set the session cookie for `user` on `response`; return the session's CSRF token."""
    csrf = secrets.token_urlsafe(24)
    cookie = _serializer(runtime).dumps({"uid": user.id, "csrf": csrf})
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=runtime.settings.cookie_secure,
        path="/",
    )
    return csrf


def end_session(response: Response) -> None:
    """Remove the session cookie from the browser (the server-side end is `log_out` or
    `users.end_sessions`)."""
    response.delete_cookie(SESSION_COOKIE, path="/")


def _session_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(str(payload.get("csrf", "")).encode()).hexdigest()


def log_out(request: Request, response: Response, session: Session, runtime: Runtime) -> None:
    """End the request's console session on the server and in the browser."""
    found = _session_payload(request, runtime)
    if found is not None:
        payload, signed_at = found
        user = session.get(User, payload["uid"])
        if user is not None:
            users.log_out(
                session, user, _session_key(payload), now=runtime.clock.now(),
                expires_at=signed_at + SESSION_MAX_AGE,
            )  # fmt: skip
    end_session(response)


def _session_payload(request: Request, runtime: Runtime) -> tuple[dict[str, Any], datetime] | None:
    """The session cookie's payload and the time it was signed (whole seconds, UTC)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        payload, signed_at = _serializer(runtime).loads(
            cookie, max_age=int(SESSION_MAX_AGE.total_seconds()), return_timestamp=True
        )
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("uid"), int):
        return None
    return payload, signed_at


def session_revoked(user: User, signed_at: datetime) -> bool:
    """True when the user's sessions were ended at or after the second this cookie was signed.

    A cookie knows its signing time to the second only: one signed in the very second of a
    revocation is refused too (revoking must never leave a session alive).
    """
    valid_from = user.sessions_valid_from
    return valid_from is not None and signed_at.timestamp() <= valid_from.timestamp()


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's console session ("" without one), for templates."""
    found = _session_payload(request, request.app.state.runtime)
    return str(found[0].get("csrf", "")) if found else ""


def _client_address(request: Request) -> str:
    """The client as uvicorn reports it (behind a proxy: see its proxy-headers setting)."""
    return request.client.host if request.client else "unknown"


def password_login(
    request: Request, session: Session, runtime: Runtime, username: str, password: str
) -> User:
    """`users.login` within the login limits: the attempt is reserved first (LoginRateLimited
    when a limit is full, before the password is checked); a wrong password (LoginRefused)
    is committed with its audit event and keeps its place; a success gives it back."""
    now = runtime.clock.now()
    limits = login_throttle.LoginLimits.from_settings(runtime.settings)
    reservation = login_throttle.reserve(
        runtime.engine, limits, username, _client_address(request), now
    )
    try:
        user = login(session, username, password, now)
    except LoginRefused:
        session.commit()
        raise
    login_throttle.release(session, reservation)
    return user


async def _submitted_csrf(request: Request) -> str:
    """The CSRF token the request carries: the header, or the form field of a form post."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if request.method in UNSAFE_METHODS and content_type.startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def get_current_user(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    submitted_csrf: Annotated[str, Depends(_submitted_csrf)],
) -> User:
    """The authenticated user; 401 without valid credentials, 403 on a missing CSRF token."""
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization: expected 'Bearer <api token>'")
        user = user_for_token(session, token.strip(), runtime.clock.now())
        if user is None:
            raise _unauthorized("the API token is unknown, revoked or its user inactive")
        return user
    found = _session_payload(request, runtime)
    if found is None:
        raise _unauthorized("not logged in")
    payload, signed_at = found
    user = session.get(User, payload["uid"])
    if user is None or not user.active:
        raise _unauthorized("the session's user no longer exists or is inactive")
    if session_revoked(user, signed_at) or users.has_logged_out(session, _session_key(payload)):
        raise _unauthorized("the session has been ended: log in again")
    expected = str(payload.get("csrf", ""))
    if request.method in UNSAFE_METHODS and not hmac.compare_digest(
        submitted_csrf.encode(), expected.encode()
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"CSRF check failed: send the session's token in {CSRF_HEADER} "
            f"or the {CSRF_FIELD} form field",
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    """A dependency passing only users with one of `roles` (403 otherwise, 401 if anonymous)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(allowed))

    def dependency(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"needs role: {names}")
        return user

    return dependency
