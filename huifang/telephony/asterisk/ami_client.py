"""An asyncio AMI client: one TCP session to Asterisk, kept alive, re-established when lost.

The wire format lives in `ami_proto`; this module only moves bytes and pairs things up.

Rules it keeps:
- a response is paired with its action by `ActionID` only (events interleave freely);
  ids carry a per-client random prefix, so a late reply from an old session never pairs
  with a new action;
- an action is serialized (and so validated) before anything is written; the actions
  sent in one turn of the event loop leave in one write (one system call for a burst of
  Originates, not one each);
- nothing is ever re-sent: when the connection drops, every action still waiting for its
  response fails with `AmiDisconnected` and its caller decides (an `Originate` whose fate
  is unknown is reconciled, never redialled);
- a `Ping` every `ping_interval` seconds that is not answered within `response_timeout`
  marks the connection half-open: it is closed and re-opened with exponential backoff,
  logging in again; reconnect listeners then run (the provider reconciles its calls);
- `start` may find Asterisk down: it says so once and keeps trying in the background
  (a process that needs Asterisk starts anyway and waits for it);
- a wrong secret is an `AmiAuthenticationError` that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable

from huifang.errors import HuifangError
from huifang.telephony.asterisk.ami_proto import (
    AmiGreeting,
    AmiItem,
    AmiMessage,
    AmiParser,
    AmiPeerError,
    serialize_action,
)

log = logging.getLogger(__name__)

#: bytes waiting in the socket's buffer above which a sender waits for Asterisk to read
_WRITE_HIGH_WATER = 256 * 1024

EventListener = Callable[[AmiMessage], None]
ReconnectListener = Callable[[], Awaitable[None]]


class AmiError(HuifangError):
    pass


class AmiAuthenticationError(AmiError):
    """Asterisk refused the AMI username or secret."""


class AmiDisconnected(AmiError):
    """The connection was lost after the action was written and before its response came:
    whether Asterisk acted on it is unknown."""


class AmiNotConnected(AmiError):
    """There was no session to send on: nothing was written."""


class AmiActionError(AmiError):
    """Asterisk answered `Response: Error`."""

    def __init__(self, action: str, response: AmiMessage) -> None:
        self.action = action
        self.response = response
        self.reason = response.get("Message")
        super().__init__(f"AMI {action} failed: {self.reason or 'no message'}")


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_interval: float = 15.0,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.ping_interval = ping_interval
        self.response_timeout = response_timeout
        self.connect_timeout = connect_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._prefix = f"hf-{secrets.token_hex(4)}"
        self._ids = itertools.count(1)
        self._event_listeners: list[EventListener] = []
        self._reconnect_listeners: list[ReconnectListener] = []
        self._pending: dict[str, asyncio.Future[AmiMessage]] = {}
        self._lists: dict[str, tuple[list[AmiMessage], asyncio.Future[list[AmiMessage]]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        #: actions of this loop turn, written together by `_flush`
        self._outbox: list[bytes] = []
        self._reader_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False
        #: how many times the session was re-established (for operators and tests)
        self.reconnects = 0

    # --- public

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def add_event_listener(self, listener: EventListener) -> None:
        """Call `listener` with every event not consumed as part of an action's list."""
        self._event_listeners.append(listener)

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        self._reconnect_listeners.append(listener)

    def next_action_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    async def connect(self) -> None:
        """Open the session and log in; from then on keep it alive until `close`."""
        await self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def start(self) -> None:
        """Like `connect`, but an Asterisk that does not answer yet is waited for in the
        background (`connected` says when it does). A refused login still raises."""
        try:
            await self.connect()
        except (OSError, TimeoutError) as exc:
            log.warning(
                "waiting for Asterisk: AMI at %s:%s does not answer (%s); nothing is dialled "
                "until it does",
                self.host, self.port, exc or type(exc).__name__,
            )  # fmt: skip
            self._lost.set()
            self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def send_action(
        self,
        action: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        action_id: str | None = None,
        wait_seconds: float | None = None,
    ) -> AmiMessage:
        """Send one action and return its response.

        Raises `ProtocolInjection` (nothing written) for a bad header, `AmiNotConnected`
        (nothing written), `AmiDisconnected` when the connection drops before the response,
        `TimeoutError` (fate unknown too), `AmiActionError`.
        """
        aid = action_id or self.next_action_id()
        data = serialize_action(action, aid, headers)
        if not self._up.is_set():
            raise AmiNotConnected(f"AMI {action}: not connected to {self.host}:{self.port}")
        response = await self._request(aid, data, wait_seconds)
        if response.response.lower() == "error":
            raise AmiActionError(action, response)
        return response

    async def send_list_action(
        self,
        action: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        wait_seconds: float | None = None,
    ) -> list[AmiMessage]:
        """An action answered by a list of events ending in `EventList: Complete`
        (CoreShowChannels, Status): the events of the list, without the final one."""
        aid = self.next_action_id()
        done: asyncio.Future[list[AmiMessage]] = asyncio.get_running_loop().create_future()
        self._lists[aid] = ([], done)
        try:
            response = await self.send_action(
                action, headers, action_id=aid, wait_seconds=wait_seconds
            )
            if response.get("EventList").lower() != "start":
                return []
            return await asyncio.wait_for(done, wait_seconds or self.response_timeout)
        finally:
            self._lists.pop(aid, None)
            if done.done() and not done.cancelled():
                done.exception()  # the caller learnt of the disconnect from the response

    async def close(self) -> None:
        """Log off, stop reconnecting and close the socket."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._up.is_set():
            with contextlib.suppress(AmiError, TimeoutError, OSError):
                await self.send_action("Logoff", wait_seconds=1.0)
        await self._finish_reader()

    async def _finish_reader(self) -> None:
        """Close the previous socket and wait until its reader has failed what it left pending,
        so it can never act on the session opened after it."""
        self._drop_connection()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
            self._reader_task = None

    # --- the session

    async def _open(self) -> None:
        await self._finish_reader()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout
        )
        self._writer = writer
        self._lost.clear()
        self._reader_task = asyncio.create_task(self._read(reader), name="ami-reader")
        aid = self.next_action_id()
        login = serialize_action(
            "Login", aid, [("Username", self._username), ("Secret", self._secret)]
        )
        try:
            response = await self._request(aid, login, self.response_timeout)
        except BaseException:
            self._drop_connection()
            raise
        if response.response.lower() != "success":
            self._drop_connection()
            raise AmiAuthenticationError(
                f"AMI login as {self._username!r} on {self.host}:{self.port} refused: "
                f"{response.get('Message') or response.response} (check ami_username / ami_secret)"
            )
        self._up.set()

    async def _request(self, aid: str, data: bytes, wait_seconds: float | None) -> AmiMessage:
        writer = self._writer
        if writer is None or self._lost.is_set():
            raise AmiNotConnected(f"AMI connection to {self.host}:{self.port} is down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AmiMessage] = loop.create_future()
        self._pending[aid] = future
        # one timer on the future itself: cheaper than `wait_for`'s wrapping per action
        timer = loop.call_later(wait_seconds or self.response_timeout, _time_out, future)
        try:
            if not self._outbox:
                loop.call_soon(self._flush, writer)
            self._outbox.append(data)
            if writer.transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                await writer.drain()
            return await future
        except (ConnectionError, OSError) as exc:
            raise AmiDisconnected(f"AMI connection lost while sending: {exc}") from exc
        finally:
            timer.cancel()
            self._pending.pop(aid, None)

    def _flush(self, writer: asyncio.StreamWriter) -> None:
        data = b"".join(self._outbox)
        self._outbox.clear()
        if writer is self._writer:  # else the session is gone and its actions failed with it
            writer.write(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = AmiParser()
        try:
            while data := await reader.read(65536):
                for item in parser.feed(data):
                    self._dispatch(item)
        except (OSError, AmiPeerError) as exc:
            log.warning("AMI connection to %s:%s broke: %s", self.host, self.port, exc)
        finally:
            self._connection_lost()

    def _dispatch(self, item: AmiItem) -> None:
        if isinstance(item, AmiGreeting):
            return
        aid = item.action_id
        if item.is_event:
            collecting = self._lists.get(aid) if aid else None
            if collecting is not None:
                events, done = collecting
                if item.get("EventList").lower() == "complete":
                    if not done.done():
                        done.set_result(events)
                else:
                    events.append(item)
                return
            for listener in self._event_listeners:
                try:
                    listener(item)
                except Exception:  # one faulty listener must not stop the session
                    log.exception("AMI event listener failed on %s", item.event)
            return
        future = self._pending.get(aid)
        if future is not None and not future.done():
            future.set_result(item)

    def _connection_lost(self) -> None:
        self._up.clear()
        self._lost.set()
        lost = AmiDisconnected(f"AMI connection to {self.host}:{self.port} lost")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(lost)
        for _, done in self._lists.values():
            if not done.done():
                done.set_exception(lost)
        self._drop_connection()

    def _drop_connection(self) -> None:
        self._outbox.clear()
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    async def _supervise(self) -> None:
        while not self._closing:
            await self._watch()
            if self._closing:
                return
            await self._reconnect()
            for listener in self._reconnect_listeners:
                try:
                    await listener()
                except Exception:
                    log.exception("AMI reconnect listener failed")

    async def _watch(self) -> None:
        """Return once the connection is lost, pinging it to find a half-open socket."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                return
            try:
                await self.send_action("Ping")
            except (AmiError, TimeoutError):
                log.warning("AMI %s:%s did not answer a Ping: reconnecting", self.host, self.port)
                self._drop_connection()
                await self._lost.wait()

    async def _reconnect(self) -> None:
        delay = self.backoff_initial
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._open()
            except (OSError, TimeoutError, AmiError) as exc:
                log.warning("AMI reconnect to %s:%s failed: %s", self.host, self.port, exc)
                delay = min(delay * 2, self.backoff_max)
                continue
            self.reconnects += 1
            log.info("AMI reconnected to %s:%s", self.host, self.port)
            return


def _time_out(future: asyncio.Future[AmiMessage]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
