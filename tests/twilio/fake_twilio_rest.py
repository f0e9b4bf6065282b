"""A recording fake of Twilio's REST API behind the SDK's swappable async HTTP client.

It answers as Twilio's API reference documents (JSON bodies with `sid`, `status`, …; errors
as `{"code", "message", "more_info", "status"}`), so the SDK's own request building and
response parsing run for real; only the network is replaced.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from twilio.http import AsyncHttpClient
from twilio.http.response import Response

ACCOUNT_SID = "AC" + "0" * 32


@dataclass
class Recorded:
    method: str
    url: str
    params: dict[str, Any]
    data: dict[str, Any]
    timeout: float | None


@dataclass
class FakeTwilioRest(AsyncHttpClient):
    requests: list[Recorded] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the next create answers with this error (status, Twilio code) instead
    refuse_next: tuple[int, int] | None = None
    #: the next create raises this (a timeout, a dropped connection) after creating the call
    lose_next_reply: BaseException | None = None
    #: Twilio's clock, for `date_created`
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        super().__init__(logger=None, is_async=True, timeout=5.0)  # type: ignore[arg-type]
        self._ids = itertools.count(1)

    async def request(  # type: ignore[override]
        self,
        method: str,
        uri: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
        allow_redirects: bool = False,
    ) -> Response:
        self.requests.append(Recorded(method, uri, dict(params or {}), dict(data or {}), timeout))
        path = re.sub(r"^https://api\.twilio\.com/2010-04-01/Accounts/[^/]+", "", uri)
        if method == "POST" and self.refuse_next is not None:
            status, code = self.refuse_next
            self.refuse_next = None
            body = {"code": code, "message": f"refused ({code})", "more_info": "", "status": status}
            return Response(status, json.dumps(body))
        if method == "POST" and path == "/Calls.json":
            created = format_datetime(self.now())
            fields = {
                "status": "queued",
                "to": data["To"],
                "from": data["From"],
                "date_created": created,
            }
            return self._created(self.calls, "CA", fields)
        if method == "GET" and path == "/Calls.json":
            to = (params or {}).get("To")
            listed = [c for c in reversed(self.calls.values()) if to in (None, c["to"])]
            page = {
                "calls": listed,
                "page": 0,
                "page_size": 50,
                "start": 0,
                "end": len(listed),
                "next_page_uri": None,
                "uri": path,
            }
            return Response(200, json.dumps(page))
        if method == "POST" and path == "/Messages.json":
            return self._created(
                self.messages, "SM", {"status": "queued", "to": data["To"], "body": data["Body"]}
            )
        found = re.fullmatch(r"/Calls/(CA\w+)\.json", path)
        if method == "GET" and found and found.group(1) in self.calls:
            return Response(200, json.dumps(self.calls[found.group(1)]))
        body = {"code": 20404, "message": "The requested resource was not found", "status": 404}
        return Response(404, json.dumps(body))

    def _created(
        self, table: dict[str, dict[str, Any]], prefix: str, fields: dict[str, Any]
    ) -> Response:
        sid = f"{prefix}{next(self._ids):032x}"
        table[sid] = {"sid": sid, "account_sid": ACCOUNT_SID, **fields}
        if self.lose_next_reply is not None:
            lost, self.lose_next_reply = self.lose_next_reply, None
            raise lost
        return Response(201, json.dumps(table[sid]))

    def set_call_status(self, sid: str, status: str, answered_by: str | None = None) -> None:
        self.calls[sid].update(status=status, answered_by=answered_by)

    async def close(self) -> None:
        pass
