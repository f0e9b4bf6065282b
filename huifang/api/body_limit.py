"""Request body limits, checked while the body streams in (an ASGI middleware).

Rules kept here:
- every request's body may be at most `max_body_bytes` (small: JSON, forms, webhooks), on
  every route, whoever reads the body (FastAPI's parsing, a webhook's HMAC check, a form);
- a route that takes large uploads raises its request's allowance with `allow_body`, and
  only once it has authenticated and authorised the caller (`huifang.api.uploads`), so an
  anonymous body is refused at the small limit;
- a declared `Content-Length` over the allowance is refused before a byte is read; a body
  without one (chunked) is counted chunk by chunk and refused as soon as the count passes
  the allowance: 413;
- a response that leaves before its request's body was read to the end (a 413, a 401 from
  an upload route) says `Connection: close`: the server then closes the connection instead
  of reading and discarding the rest;
- nothing is buffered here: the chunks go to the reader as they come.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALLOWANCE_KEY = "huifang.body_allowance"


@dataclass(slots=True)
class _Allowance:
    limit: int
    received: int = 0


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            detail=f"the request body is over the {limit} bytes this request may send",
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowance = _Allowance(self.max_body_bytes)
        scope[_ALLOWANCE_KEY] = allowance
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        unread = bool(declared) or "transfer-encoding" in headers

        async def limited_receive() -> Message:
            nonlocal unread
            if declared is not None and declared > allowance.limit:
                raise BodyTooLarge(allowance.limit)
            message = await receive()
            if message["type"] == "http.request":
                allowance.received += len(message.get("body", b""))
                if allowance.received > allowance.limit:
                    raise BodyTooLarge(allowance.limit)
                unread = message.get("more_body", False)
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and unread:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, limited_receive, closing_send)


def allow_body(request: Request, limit: int) -> None:
    """Let this request's body be up to `limit` bytes (call it only for an authorised caller,
    before the body is read)."""
    request.scope[_ALLOWANCE_KEY].limit = limit


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None
