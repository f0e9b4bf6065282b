"""Domain errors → HTTP responses, in one place.

The API and webhooks get JSON bodies `{"detail": "..."}`; a browser on a console page gets
the same status as a page in the console's layout, so a supervisor who follows a link to
another unit's ticket sees "you may not open this page", not a JSON document.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from huifang.errors import Conflict, Forbidden, IllegalTransition, InvalidPhoneNumber, NotFound

_STATUS: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (IllegalTransition, 409),
    (InvalidPhoneNumber, 422),
]
#: paths that are machine interfaces: always JSON
_MACHINE_PREFIXES = ("/api/", "/webhooks/", "/metrics", "/healthz", "/openapi.json", "/docs")


def _wants_page(request: Request) -> bool:
    if request.url.path.startswith(_MACHINE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def _error_page(request: Request, status: int, message: str) -> Response:
    from huifang.api.console.web import render

    heading = f"error_{status}" if status in (403, 404, 409) else "error"
    return render(request, "error.html", None, status_code=status, heading=heading, message=message)


def install_error_handlers(app: FastAPI) -> None:
    for error_type, status in _STATUS:

        async def handler(request: Request, exc: Exception, status: int = status) -> Response:
            if _wants_page(request):
                return _error_page(request, status, str(exc))
            return JSONResponse(status_code=status, content={"detail": str(exc)})

        app.add_exception_handler(error_type, handler)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code >= 400 and _wants_page(request):
            return _error_page(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
