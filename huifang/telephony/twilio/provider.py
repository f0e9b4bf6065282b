"""`TelephonyProvider` over Twilio's REST API; the survey itself runs in the voice webhook.

Rules kept here:
- the SDK's async client always gets an explicit timeout (its default has none), and its
  HTTP client is swappable so tests answer as Twilio's API reference documents;
- a `calls.create` that timed out or lost its connection raises `CallFateUnknown`: the call
  may exist, so it is looked up (`lookup`: by the sid the status webhook stored, else the
  newest call to that number since we asked), never sent again;
- a refusal Twilio explains (invalid number, unreachable, rate limited) becomes a `failed`
  call event whose cause names it; the dialer's retry policy decides what follows;
- progress comes from the status webhook (`report`), which may run in another process:
  the database, not this queue, is the record of truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.rest import Client

from huifang.bootstrap import Runtime
from huifang.clock import Clock, SystemClock
from huifang.settings import Settings
from huifang.telephony.base import CallEvent, CallFateUnknown, CallProgress, OriginateRequest
from huifang.telephony.twilio.signature import public_url

#: Twilio error codes that say the number itself is wrong
INVALID_NUMBER_CODES = frozenset({13223, 13224, 13226, 21211, 21217, 21401})
#: codes that say the number is right but cannot be reached from this account
UNREACHABLE_CODES = frozenset({13225, 13227, 21214, 21215, 21216, 21612})
RATE_LIMITED_CODES = frozenset({20429, 14107})

#: Twilio call status → our progress; `queued` and `initiated` say nothing new
CALL_STATUS_PROGRESS: dict[str, CallProgress] = {
    "ringing": CallProgress.ringing,
    "in-progress": CallProgress.answered,
    "completed": CallProgress.completed,
    "busy": CallProgress.busy,
    "no-answer": CallProgress.no_answer,
    "failed": CallProgress.failed,
    "canceled": CallProgress.failed,
}

#: how far Twilio's clock may be from ours when matching a call to the request that made it
CLOCK_SKEW = timedelta(minutes=1)

#: where the provider finds the Twilio call sid of an attempt it did not place itself
CallSidOf = Callable[[int], str | None]


def refusal_cause(error: TwilioRestException) -> str:
    """A short cause for the attempt record: what kind of refusal, and Twilio's code."""
    code = error.code or 0
    if error.status == 429 or code in RATE_LIMITED_CODES:
        kind = "rate_limited"
    elif code in INVALID_NUMBER_CODES:
        kind = "invalid_number"
    elif code in UNREACHABLE_CODES:
        kind = "unreachable"
    else:
        kind = "refused"
    return f"{kind}:twilio-{code or error.status}"


def progress_of(call_status: str, answered_by: str = "") -> CallProgress | None:
    """Our progress for a Twilio `CallStatus` (+ `AnsweredBy` from machine detection)."""
    if answered_by.startswith("machine") or answered_by == "fax":
        return CallProgress.machine
    return CALL_STATUS_PROGRESS.get(call_status)


def voice_url(public_base_url: str, attempt_id: int, step: int = 0) -> str:
    return public_url(
        public_base_url, "/webhooks/twilio/voice", f"attempt={attempt_id}&step={step}"
    )


def status_url(public_base_url: str, attempt_id: int) -> str:
    return public_url(public_base_url, "/webhooks/twilio/status", f"attempt={attempt_id}")


class TwilioProvider:
    name = "twilio"
    #: nothing to connect: a call placed is always handed over
    ready = True

    def __init__(
        self,
        client: Client,
        *,
        from_number: str,
        public_base_url: str,
        max_channels: int = 30,
        clock: Clock | None = None,
        call_sid_of: CallSidOf | None = None,
    ) -> None:
        self._client = client
        self.from_number = from_number
        self.public_base_url = public_base_url
        self.max_channels = max_channels
        self._clock: Clock = clock or SystemClock()
        self._call_sid_of = call_sid_of
        self._sids: dict[int, str] = {}
        #: calls this provider asked for: the number and when, to find one whose reply was lost
        self._placed: dict[int, tuple[str, datetime]] = {}
        self._events: asyncio.Queue[CallEvent | None] = asyncio.Queue()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        http_client: AsyncHttpClient | None = None,
        call_sid_of: CallSidOf | None = None,
    ) -> TwilioProvider:
        return cls(
            twilio_client(settings, http_client),
            from_number=settings.twilio_from_number,
            public_base_url=settings.public_base_url,
            max_channels=settings.dial_trunk.channels,
            clock=clock,
            call_sid_of=call_sid_of,
        )

    @classmethod
    def from_runtime(
        cls, runtime: Runtime, *, http_client: AsyncHttpClient | None = None
    ) -> TwilioProvider:
        """The provider of a deployment: `lookup` reads the call sid the status webhook stored."""

        def call_sid_of(attempt_id: int) -> str | None:
            from sqlmodel import Session

            from huifang.domain.models import CallAttempt

            with Session(runtime.engine) as db:
                attempt = db.get(CallAttempt, attempt_id)
                return (attempt.provider_call_id or None) if attempt else None

        return cls.from_settings(
            runtime.settings, clock=runtime.clock, http_client=http_client, call_sid_of=call_sid_of
        )

    async def originate(self, request: OriginateRequest) -> str:
        self._placed[request.attempt_id] = (request.phone, self._clock.now())
        try:
            call = await self._client.calls.create_async(
                to=request.phone,
                from_=request.caller_id or self.from_number,
                url=voice_url(self.public_base_url, request.attempt_id),
                method="POST",
                status_callback=status_url(self.public_base_url, request.attempt_id),
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                machine_detection="Enable",
                timeout=request.ring_timeout_seconds,
            )
        except TwilioRestException as exc:
            self.report(
                CallEvent(
                    request.attempt_id,
                    CallProgress.failed,
                    self._clock.now(),
                    "",
                    refusal_cause(exc),
                )
            )
            return ""
        except (TimeoutError, OSError) as exc:
            raise CallFateUnknown(
                f"attempt {request.attempt_id}: Twilio did not answer calls.create "
                f"({type(exc).__name__}); the call is looked up, never sent again"
            ) from exc
        except Exception as exc:
            if _is_transport_error(exc):
                raise CallFateUnknown(
                    f"attempt {request.attempt_id}: calls.create failed in transit ({exc})"
                ) from exc
            raise
        self._sids[request.attempt_id] = call.sid
        return str(call.sid)

    def report(self, event: CallEvent) -> None:
        """Progress learned from a status webhook (or a refusal): onto the events queue."""
        if event.provider_call_id:
            self._sids[event.attempt_id] = event.provider_call_id
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[CallEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def lookup(self, attempt_id: int) -> CallEvent | None:
        sid = self._sids.get(attempt_id)
        if not sid and self._call_sid_of is not None:
            sid = await asyncio.to_thread(self._call_sid_of, attempt_id)
        if not sid:
            sid = await self._find_placed_call(attempt_id)
        if not sid:
            return None
        call = await self._client.calls(sid).fetch_async()
        progress = progress_of(str(call.status), str(getattr(call, "answered_by", "") or ""))
        if progress is None:  # queued / initiated: placed, not ringing yet
            progress = CallProgress.ringing
        return CallEvent(attempt_id, progress, self._clock.now(), sid, f"reconciled:{call.status}")

    async def _find_placed_call(self, attempt_id: int) -> str | None:
        """The call Twilio created for a `calls.create` whose reply was lost: the newest call
        to the same number created since we asked (allowing for clock skew)."""
        placed = self._placed.get(attempt_id)
        if placed is None:
            return None
        phone, asked_at = placed
        since = asked_at - CLOCK_SKEW
        calls = await self._client.calls.list_async(to=phone, limit=20)
        created = [c for c in calls if c.date_created is not None and c.date_created >= since]
        if not created:
            return None
        newest = max(created, key=lambda c: c.date_created)
        self._sids[attempt_id] = str(newest.sid)
        return str(newest.sid)

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        http_client: Any = self._client.http_client
        close = getattr(http_client, "close", None)
        if close is not None:
            await close()
        self._events.put_nowait(None)


def twilio_client(settings: Settings, http_client: AsyncHttpClient | None = None) -> Client:
    """The SDK client on the async HTTP client, with the configured timeout."""
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=http_client or timed_http_client(settings.twilio_timeout_seconds),
    )


def timed_http_client(seconds: float) -> AsyncHttpClient:
    """The SDK's aiohttp client with a deadline on every request.

    `AsyncTwilioHttpClient(timeout=…)` stores its timeout but only honours a per-request one,
    which the SDK never passes: without this, a hung API call would wait for aiohttp's
    five-minute default while the dialer holds a channel. Its connection pool is opened on
    the first request, so settings can be turned into a gateway outside an event loop.
    """
    from aiohttp import ClientSession
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    class TimedAsyncHttpClient(AsyncTwilioHttpClient):
        session: ClientSession | None

        async def request(
            self,
            method: str,
            url: str,
            params: dict[str, object] | None = None,
            data: dict[str, object] | None = None,
            headers: dict[str, str] | None = None,
            auth: tuple[str, str] | None = None,
            timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
            allow_redirects: bool = False,
        ) -> Any:
            if self.session is None:
                self.session = ClientSession()
            async with asyncio.timeout(timeout or self.timeout):
                return await super().request(
                    method, url, params, data, headers, auth, None, allow_redirects
                )

    return TimedAsyncHttpClient(timeout=seconds, pool_connections=False)


def _is_transport_error(exc: Exception) -> bool:
    """aiohttp's client errors, without importing aiohttp on this path."""
    return any(cls.__module__.startswith("aiohttp") for cls in type(exc).__mro__)
