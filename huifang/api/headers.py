"""Security headers on every response, and the Origin check of every unsafe request (an
ASGI middleware, so every route of every router gets both without asking).

Rules kept here:
- every response says `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
  `Referrer-Policy: same-origin` and a Content-Security-Policy allowing scripts, styles,
  images, fonts and connections from this origin only (no inline script, no plugins, no
  framing; forms post here only), unless the response set its own policy;
- `Cache-Control: no-store` unless the response set its own (the static files do): pages
  and API answers carry citizens' numbers and complaints, and must stay out of browser and
  proxy caches;
- `Strict-Transport-Security` when the public base URL is https;
- an unsafe request (POST, PUT, PATCH, DELETE) whose `Origin` is another site's is refused
  with 403 before any route sees it: a cross-site form cannot log a browser in or act with
  its session. Our origin is the public base URL's, or the scheme and host the request was
  sent to. Requests without `Origin` (API clients, providers' webhooks) pass.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; media-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HSTS = (b"strict-transport-security", b"max-age=31536000")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class SecurityHeaders:
    def __init__(self, app: ASGIApp, public_base_url: str) -> None:
        self.app = app
        self.public_origin = _origin_of(public_base_url)
        self.always: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
        ]
        if self.public_origin.startswith("https://"):
            self.always.append(_HSTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in _UNSAFE_METHODS and not self._same_origin(scope):
            await self._refuse_cross_origin(send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                headers.extend(self.always)
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _same_origin(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            return True
        origin = origin.lower()
        if origin == self.public_origin:
            return True
        host = headers.get("host", "").lower()
        return bool(host) and origin == f"{scope.get('scheme', 'http')}://{host}"

    async def _refuse_cross_origin(self, send: Send) -> None:
        body = json.dumps(
            {"detail": "cross-site request refused: Origin is not this site's"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *self.always,
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
