"""Domain errors → HTTP responses, in one place.

The API and webhooks get JSON bodies `{"detail": "..."}`; any other address (the console's)
gets the same status as a page in the console's layout, with the menu of the logged-in user
and the message in the page's language, so a supervisor who follows a link to another unit's
ticket sees "you may not open this page", not a JSON document. Only a client that asks for
JSON and not for HTML (the console's own scripts) gets JSON there. An id in a console address
that is not an id (`/tickets/abc`) is a 404 page, as an id that does not exist is.

A database that cannot take the request's transaction (SQLite's write lock held too long,
a lock timeout, a lost connection) is a 503 with Retry-After: nothing of the request was
kept, and the client may try again.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from huifang.errors import Conflict, Forbidden, IllegalTransition, InvalidPhoneNumber, NotFound

_STATUS: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (IllegalTransition, 409),
    (InvalidPhoneNumber, 422),
]
RETRY_AFTER_SECONDS = "5"
#: paths that are machine interfaces: always JSON
_MACHINE_PREFIXES = ("/api/", "/webhooks/", "/metrics", "/healthz", "/openapi.json", "/docs")


def _wants_page(request: Request) -> bool:
    if request.url.path.startswith(_MACHINE_PREFIXES):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "json" not in accept


def _error_page(request: Request, status: int, message: str) -> Response:
    from huifang.api.console.messages import localize
    from huifang.api.console.web import language, page_user, render

    heading = f"error_{status}" if status in (403, 404, 405, 409, 503) else "error"
    lang = language(request)
    return render(
        request, "error.html", page_user(request), status_code=status, heading=heading,
        message=localize(message, lang, fallback=heading),
    )  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    for error_type, status in _STATUS:

        async def handler(request: Request, exc: Exception, status: int = status) -> Response:
            if _wants_page(request):
                return _error_page(request, status, str(exc))
            return JSONResponse(status_code=status, content={"detail": str(exc)})

        app.add_exception_handler(error_type, handler)

    async def http_error(request: Request, exc: Exception) -> Response:
        from huifang.api.console.web import LoginToContinue, login_to_continue_page

        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, LoginToContinue):
            return login_to_continue_page(request, exc)
        if exc.headers and "HX-Redirect" in exc.headers:
            return Response(status_code=204, headers=exc.headers)
        if exc.status_code >= 400 and _wants_page(request):
            return _error_page(request, exc.status_code, str(exc.detail))
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)

    async def invalid_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _wants_page(request):
            from huifang.api.console.messages import localize_input_errors
            from huifang.api.console.web import language

            if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
                return _error_page(request, 404, "Not Found")
            return _error_page(request, 422, localize_input_errors(exc.errors(), language(request)))
        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, invalid_input)

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        message = "the database is busy or unreachable: nothing was saved; try again"
        if _wants_page(request):
            response = _error_page(request, 503, message)
        else:
            response = JSONResponse(status_code=503, content={"detail": message})
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    app.add_exception_handler(OperationalError, database_unavailable)
