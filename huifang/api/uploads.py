"""Routes that take large uploads (incident imports, rectification evidence), and storing
an uploaded file.

Rules kept here:
- an upload route authenticates and authorises the caller before a byte of the body is
  read: an anonymous or unauthorised request is answered 401/403 at once, and only an
  authorised one may send more than the small `max_body_bytes` (`huifang.api.body_limit`),
  up to the route's own limit from settings;
- a browser session must send its CSRF token in the `X-CSRF-Token` header on an upload (the
  form field sits in the very body that must not be read first);
- a stored file gets a generated name (the uploaded name is kept only as metadata), is at
  most `MAX_ATTACHMENT_BYTES`, and is removed if the transaction recording it rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response, UploadFile
from sqlmodel import Session

from huifang.api.auth import CSRF_HEADER, get_current_user
from huifang.api.body_limit import allow_body
from huifang.api.routes.common import DomainRoute
from huifang.bootstrap import Runtime
from huifang.db import remove_on_rollback, session_scope
from huifang.domain.models import User
from huifang.domain.users import Role
from huifang.followup.tickets import StoredFile
from huifang.settings import Settings

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_CHUNK = 1024 * 1024


def upload_route(limit: Callable[[Settings], int], *roles: Role) -> type[DomainRoute]:
    """A route class whose requests may send up to `limit(settings)` bytes once their caller
    is known to hold one of `roles`."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(allowed))

    class UploadRoute(DomainRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                runtime: Runtime = request.app.state.runtime
                user = await runtime.run_db(_caller, runtime, request)
                if user.role not in allowed:
                    raise HTTPException(403, detail=f"needs role: {names}")
                allow_body(request, limit(runtime.settings))
                return await handler(request)

            return route

    return UploadRoute


def _caller(runtime: Runtime, request: Request) -> User:
    with session_scope(runtime.engine) as session:
        try:
            return get_current_user(request, session, runtime, request.headers.get(CSRF_HEADER, ""))
        except HTTPException as exc:
            if exc.status_code == 403:  # the CSRF check: on an upload only the header counts
                raise HTTPException(
                    403, detail=f"uploads: send the session's CSRF token in {CSRF_HEADER}"
                ) from None
            raise


def store_upload(upload: UploadFile, directory: Path, session: Session) -> StoredFile:
    """Write `upload` under `directory` with a generated name, for `session`'s transaction
    (removed if it rolls back). ValueError naming the file when it is over
    MAX_ATTACHMENT_BYTES."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / uuid.uuid4().hex
    remove_on_rollback(session, path)
    size = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(_CHUNK):
            size += len(chunk)
            if size > MAX_ATTACHMENT_BYTES:
                raise ValueError(f"files: {upload.filename!r} is over {MAX_ATTACHMENT_BYTES} bytes")
            out.write(chunk)
    return StoredFile(
        filename=(upload.filename or "attachment")[:255],
        content_type=(upload.content_type or "application/octet-stream")[:128],
        path=str(path),
        size=size,
    )
