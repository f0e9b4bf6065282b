"""Domain errors → HTTP responses, in one place. Bodies: `{"detail": "...", "field": ...}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from huifang.errors import Conflict, Forbidden, IllegalTransition, InvalidPhoneNumber, NotFound

_STATUS: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (IllegalTransition, 409),
    (InvalidPhoneNumber, 422),
]


def install_error_handlers(app: FastAPI) -> None:
    for error_type, status in _STATUS:

        async def handler(_request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse(status_code=status, content={"detail": str(exc)})

        app.add_exception_handler(error_type, handler)
