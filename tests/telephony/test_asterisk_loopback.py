"""The provider and its AMI client against a scripted Asterisk on loopback: disconnects
during an Originate, reconnects, half-open sockets, and many calls at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from asterisk_replay import FakeAmi

from huifang.errors import ProtocolInjection
from huifang.phones import normalize_phone
from huifang.telephony.asterisk.ami_client import AmiClient, AmiNotConnected
from huifang.telephony.asterisk.provider import AsteriskProvider
from huifang.telephony.base import (
    CallEvent,
    CallFateUnknown,
    CallNotPlaced,
    CallProgress,
    OriginateRequest,
)

P = CallProgress
FINAL_BY_NUMBER = {
    "+8613800000001": P.abandoned,
    "+8613800000002": P.abandoned,
    "+8613800000003": P.busy,
    "+8613800000004": P.no_answer,
    "+8613800000005": P.failed,
    "+8613800000006": P.abandoned,
}


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAmi]:
    fake = FakeAmi()
    yield fake
    await fake.stop()


async def started(
    fake: FakeAmi, settle_seconds: float = 0, **client_options: float
) -> AsteriskProvider:
    port = await fake.start()
    options = {
        "ping_interval": 3600.0,
        "response_timeout": 2.0,
        "backoff_initial": 0.01,
    } | client_options
    client = AmiClient("127.0.0.1", port, "huifang", "s3cret", **options)
    provider = AsteriskProvider(
        client,
        channel_template="Local/{number}@citizens",
        calls_per_second=100_000,
        settle_seconds=settle_seconds,
    )
    await provider.start()
    return provider


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def next_events(provider: AsteriskProvider, count: int) -> list[CallEvent]:
    events: list[CallEvent] = []
    async with asyncio.timeout(10):
        async for event in provider.events():
            events.append(event)
            if len(events) == count:
                break
    return events


async def reconnected(client: AmiClient) -> None:
    done = asyncio.Event()

    async def mark() -> None:
        done.set()

    client.add_reconnect_listener(mark)
    async with asyncio.timeout(10):
        await done.wait()


async def test_disconnect_during_originate_is_fate_unknown_and_never_redialled(
    asterisk: FakeAmi,
) -> None:
    asterisk.drop_on_originate = {"huifang-41"}
    provider = await started(asterisk)
    with pytest.raises(CallFateUnknown, match="never redialled"):
        await provider.originate(OriginateRequest(41, "+8613800000001"))
    (event,) = await next_events(provider, 1)
    # the call never showed up on Asterisk: the dialer's normal retry applies
    assert (event.attempt_id, event.progress, event.cause) == (41, P.failed, "lost_in_disconnect")
    assert asterisk.dials == {"huifang-41": 1}
    assert asterisk.logins == 2
    lookup = await provider.lookup(41)
    assert lookup is not None and lookup.progress is P.failed
    await provider.close()


async def test_a_call_placed_before_the_disconnect_is_followed_after_it(asterisk: FakeAmi) -> None:
    asterisk.drop_on_originate = {"huifang-42"}
    asterisk.placed_anyway = True
    provider = await started(asterisk)
    with pytest.raises(CallFateUnknown):
        await provider.originate(OriginateRequest(42, "+8613800000001"))
    (answered,) = await next_events(provider, 1)
    assert (answered.progress, answered.cause) == (P.answered, "reconciled")
    asterisk.emit(
        ["Event: Hangup", "Uniqueid: huifang-42", "Cause: 16", "Cause-txt: Normal Clearing", ""]
    )
    (ended,) = await next_events(provider, 1)
    assert (ended.progress, ended.cause) == (P.abandoned, "16 Normal Clearing")
    assert asterisk.dials == {"huifang-42": 1}
    await provider.close()


async def test_the_end_of_an_answered_call_waits_for_the_survey_to_settle(
    asterisk: FakeAmi,
) -> None:
    asterisk.drop_on_originate = {"huifang-48"}
    asterisk.placed_anyway = True
    provider = await started(asterisk, settle_seconds=0.5)
    with pytest.raises(CallFateUnknown):
        await provider.originate(OriginateRequest(48, "+8613800000001"))
    (answered,) = await next_events(provider, 1)
    asterisk.emit(
        ["Event: Hangup", "Uniqueid: huifang-48", "Cause: 16", "Cause-txt: Normal Clearing", ""]
    )
    await provider._client.send_action("Ping")  # answered after the Hangup: it was read
    # known at once (recovery may ask), published only after the survey had its chance
    known = await provider.lookup(48)
    assert known is not None and known.progress is P.abandoned
    assert provider._events.empty()
    (ended,) = await next_events(provider, 1)
    assert ended.progress is P.abandoned
    await provider.close()


async def test_the_first_call_connects_a_provider_nobody_started(asterisk: FakeAmi) -> None:
    port = await asterisk.start()
    client = AmiClient("127.0.0.1", port, "huifang", "s3cret", ping_interval=3600)
    provider = AsteriskProvider(
        client, channel_template="Local/{number}@citizens", settle_seconds=0
    )
    await provider.originate(OriginateRequest(49, "+8613800000003"))
    (event,) = await next_events(provider, 1)
    assert event.progress is P.busy and asterisk.logins == 1
    await provider.close()


async def test_lookup_sees_a_live_channel(asterisk: FakeAmi) -> None:
    asterisk.live["huifang-43"] = "5"
    provider = await started(asterisk)
    found = await provider.lookup(43)
    assert found is not None and found.progress is P.ringing
    assert await provider.lookup(44) is None
    await provider.close()


async def test_lookup_follows_a_ringing_call_placed_by_another_process(asterisk: FakeAmi) -> None:
    """A restarted worker asks about a call its previous run placed: Asterisk still rings
    it, so its outcome is reported when it comes, not guessed later."""
    asterisk.live["huifang-47"] = "5"
    provider = await started(asterisk)
    found = await provider.lookup(47)
    assert found is not None and found.progress is P.ringing
    asterisk.emit(["Event: OriginateResponse", "Response: Failure", "Channel: Local/13800000004@citizens",
                   "Reason: 3", "Uniqueid: huifang-47", ""])  # fmt: skip
    (ended,) = await next_events(provider, 1)
    assert (ended.attempt_id, ended.progress, ended.cause) == (47, P.no_answer, "no_answer")
    await provider.close()


async def test_a_dropped_connection_reconnects_and_logs_in_again(asterisk: FakeAmi) -> None:
    provider = await started(asterisk)
    client = provider._client
    asterisk.drop_all()
    await reconnected(client)
    assert asterisk.logins == 2 and client.reconnects == 1
    await provider.originate(OriginateRequest(45, "+8613800000003"))
    (event,) = await next_events(provider, 1)
    assert event.progress is P.busy
    await provider.close()


async def test_a_half_open_connection_is_found_by_ping_and_replaced(asterisk: FakeAmi) -> None:
    asterisk.deaf = True
    provider = await started(asterisk, ping_interval=0.02, response_timeout=0.05)
    client = provider._client
    await reconnected(client)
    assert asterisk.logins >= 2
    await provider.close()


async def test_originate_while_down_is_not_placed_and_sends_nothing(asterisk: FakeAmi) -> None:
    provider = await started(asterisk)
    client = provider._client
    asterisk.secret = "rotated"  # every reconnect is refused: the client stays down
    asterisk.drop_all()
    async with asyncio.timeout(5):
        await asterisk.refused.wait()
    assert not provider.ready
    with pytest.raises(CallNotPlaced):
        await provider.originate(OriginateRequest(46, "+8613800000001"))
    assert asterisk.dials == {}
    assert provider._tracker.live() == []
    with pytest.raises(AmiNotConnected):
        await client.send_action("Ping")
    await provider.close()


async def test_a_provider_started_while_asterisk_is_down_waits_for_it(
    asterisk: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    """Start-up does not fail: it says it waits, and connects once Asterisk answers."""
    port = free_port()
    client = AmiClient("127.0.0.1", port, "huifang", "s3cret", ping_interval=3600,
                       backoff_initial=0.01, backoff_max=0.05)  # fmt: skip
    provider = AsteriskProvider(client, channel_template="Local/{number}@citizens")
    await provider.start()
    assert not provider.ready
    assert any("waiting for Asterisk" in r.getMessage() for r in caplog.records)
    asterisk.server = await asyncio.start_server(asterisk._serve, "127.0.0.1", port)
    await reconnected(client)
    assert provider.ready and asterisk.logins == 1
    await provider.close()


async def test_200_concurrent_calls_each_get_one_outcome(asterisk: FakeAmi) -> None:
    provider = await started(asterisk)
    numbers = list(FINAL_BY_NUMBER)
    requests = [
        OriginateRequest(5000 + i, numbers[i % len(numbers)], ring_timeout_seconds=15)
        for i in range(200)
    ]
    await asyncio.gather(*(provider.originate(r) for r in requests))
    finals: dict[int, CallProgress] = {}
    async with asyncio.timeout(20):
        async for event in provider.events():
            if event.progress.is_final:
                assert event.attempt_id not in finals, "two final events for one call"
                finals[event.attempt_id] = event.progress
                if len(finals) == len(requests):
                    break
    assert finals == {r.attempt_id: FINAL_BY_NUMBER[r.phone] for r in requests}
    assert set(asterisk.dials.values()) == {1}
    await provider.close()


@pytest.mark.parametrize(
    "request_",
    [
        OriginateRequest(47, "+8613800000001\r\nAction: Command"),
        OriginateRequest(47, "+86138\x0000000001"),
        OriginateRequest(47, "+8613800000001", caller_id='"Evil\r\nAction: Hangup" <110>'),
        OriginateRequest(47, "+8613800000001", caller_id="110\nAction: Command"),
    ],
)
async def test_injection_attempts_are_refused_with_nothing_written(
    asterisk: FakeAmi, request_
) -> None:
    provider = await started(asterisk)
    with pytest.raises((ProtocolInjection, ValueError)):
        await provider.originate(request_)
    assert asterisk.dials == {}
    pong = await provider._client.send_action("Ping")  # the session is still clean
    assert pong.get("Ping") == "Pong"
    await provider.close()


@pytest.mark.parametrize("bad", ["\r", "\n", "\x00"])
async def test_client_writes_nothing_for_an_injected_header(asterisk: FakeAmi, bad: str) -> None:
    provider = await started(asterisk)
    client = provider._client
    with pytest.raises(ProtocolInjection):
        await client.send_action("Originate", [("Channel", f"Local/1@x{bad}Action: Command")])
    await client.send_action("Ping")
    assert asterisk.actions == ["Login", "Ping"]
    await provider.close()


async def test_the_provider_dials_the_e164_number_without_parsing_it_again(
    asterisk: FakeAmi, monkeypatch: pytest.MonkeyPatch
) -> None:
    import phonenumbers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers was called at dial time")

    provider = await started(asterisk)
    for name in ("parse", "is_valid_number", "format_out_of_country_calling_number"):
        monkeypatch.setattr(phonenumbers, name, refuse)
    await provider.originate(OriginateRequest(48, "+8613800000003"))
    (sent,) = asterisk.originates
    assert sent["Channel"] == "Local/13800000003@citizens"
    await provider.close()


def test_a_phone_number_with_control_characters_never_reaches_a_provider() -> None:
    with pytest.raises(ValueError):
        normalize_phone("138 0000 0001\r\nAction: Command")


async def test_bridge_rings_the_agent_then_dials_the_citizen(asterisk: FakeAmi) -> None:
    provider = await started(asterisk)
    call_id = await provider.bridge("+8613800000001", "+8613800000006", "escalation-9")
    (sent,) = asterisk.originates
    assert sent["ChannelId"] == call_id and call_id.startswith("huifang-bridge-")
    assert (sent["Channel"], sent["Context"], sent["Exten"]) == (
        "Local/13800000001@citizens",
        "agent-callback",
        "13800000006",
    )
    assert sent["Variable"] == "HUIFANG_ESCALATION_ID=escalation-9"
    await provider.close()


async def test_bridge_refuses_an_injected_reference(asterisk: FakeAmi) -> None:
    provider = await started(asterisk)
    with pytest.raises(ProtocolInjection):
        await provider.bridge("+8613800000001", "+8613800000006", "9\r\nAction: Command")
    assert asterisk.originates == []
    await provider.close()
