"""The AMI client and the Asterisk provider against the real captures, replayed byte for
byte (cut at random points, with unrequested events between messages)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from asterisk_replay import AmiReplayPeer

from huifang.telephony.asterisk.ami_client import (
    AmiActionError,
    AmiAuthenticationError,
    AmiClient,
)
from huifang.telephony.asterisk.provider import AsteriskProvider
from huifang.telephony.base import CallEvent, CallProgress, OriginateRequest

P = CallProgress
Replay = Callable[..., Awaitable[tuple[AmiReplayPeer, int]]]


@pytest.fixture
async def replay() -> AsyncIterator[Replay]:
    peers: list[AmiReplayPeer] = []

    async def start(capture: str, **options: object) -> tuple[AmiReplayPeer, int]:
        peer = AmiReplayPeer(capture, **options)  # type: ignore[arg-type]
        peers.append(peer)
        return peer, await peer.start()

    yield start
    for peer in peers:
        await peer.stop()


def client_for(port: int, secret: str = "s3cret") -> AmiClient:
    return AmiClient("127.0.0.1", port, "huifang", secret, ping_interval=3600, response_timeout=5)


def provider_for(client: AmiClient) -> AsteriskProvider:
    return AsteriskProvider(
        client,
        channel_template="Local/{number}@citizens",
        context="survey",
        caller_id_text='"Huifang" <110>',
        calls_per_second=1000,
        settle_seconds=0,
    )


async def outcome(provider: AsteriskProvider) -> list[tuple[CallProgress, str]]:
    seen: list[CallEvent] = []
    async with asyncio.timeout(5):
        async for event in provider.events():
            seen.append(event)
            if event.progress.is_final:
                break
    return [(e.progress, e.cause) for e in seen]


CALLS = [
    ("ami-originate-answered-dtmf1.log", 1001, [(P.answered, ""), (P.abandoned, "0 Unknown")]),
    (
        "ami-originate-answered-dtmf2-speech.log",
        1002,
        [(P.answered, ""), (P.abandoned, "16 Normal Clearing")],
    ),
    ("ami-originate-busy.log", 1003, [(P.busy, "busy")]),
    ("ami-originate-no-answer.log", 1004, [(P.ringing, ""), (P.no_answer, "no_answer")]),
    ("ami-originate-congestion.log", 1005, [(P.failed, "congestion")]),
    (
        "ami-originate-answer-then-hangup.log",
        1006,
        [(P.answered, ""), (P.abandoned, "16 Normal Clearing")],
    ),
]


@pytest.mark.parametrize(("capture", "attempt_id", "expected"), CALLS)
@pytest.mark.parametrize("noise", [False, True])
async def test_originate_reports_the_captured_outcome(
    replay: Replay, capture: str, attempt_id: int, expected: list, noise: bool
) -> None:
    peer, port = await replay(capture, noise=noise, seed=attempt_id)
    provider = provider_for(client_for(port))
    await provider.start()
    call_id = await provider.originate(
        OriginateRequest(
            attempt_id, f"+86138000000{attempt_id - 1000:02d}", ring_timeout_seconds=15
        )
    )
    assert call_id == f"huifang-{attempt_id}"
    assert await outcome(provider) == expected
    await provider.close()
    assert peer.mismatches == []  # the Originate went out exactly as in the capture


async def test_lookup_returns_the_final_outcome(replay: Replay) -> None:
    _, port = await replay("ami-originate-busy.log")
    provider = provider_for(client_for(port))
    await provider.start()
    await provider.originate(OriginateRequest(1003, "+8613800000003", ring_timeout_seconds=15))
    await outcome(provider)
    found = await provider.lookup(1003)
    assert found is not None and found.progress is P.busy
    await provider.close()


async def test_bad_credentials_fail_login_with_a_clear_error(replay: Replay) -> None:
    _, port = await replay("ami-bad-login.log")
    client = AmiClient("127.0.0.1", port, "huifang", "wrong", ping_interval=3600)
    with pytest.raises(AmiAuthenticationError, match="Authentication failed.*ami_secret"):
        await client.connect()
    assert not client.connected


async def test_ping_unknown_action_and_refused_originate(replay: Replay) -> None:
    peer, port = await replay("ami-ping-and-errors.log", strict=False, noise=True)
    client = client_for(port)
    await client.connect()
    pong = await client.send_action("Ping")
    assert pong.get("Ping") == "Pong"
    with pytest.raises(AmiActionError, match="Invalid/unknown command: NoSuchAction"):
        await client.send_action("NoSuchAction")
    with pytest.raises(AmiActionError, match="Originate failed") as refused:
        await client.send_action("Originate", [("Channel", "Bogus/123"), ("Context", "survey")])
    assert refused.value.reason == "Originate failed"
    await client.close()
    assert [m[0] for m in peer.received] == [
        "Action: Login",
        "Action: Ping",
        "Action: NoSuchAction",
        "Action: Originate",
        "Action: Logoff",
    ]


async def test_provider_reports_a_refused_originate_as_failed(replay: Replay) -> None:
    _, port = await replay("ami-ping-and-errors.log", strict=False)
    client = client_for(port)
    provider = provider_for(client)
    await provider.start()
    await client.send_action("Ping")
    with pytest.raises(AmiActionError):
        await client.send_action("NoSuchAction")
    await provider.originate(OriginateRequest(7, "+8613800000007"))
    assert await outcome(provider) == [(P.failed, "refused: Originate failed")]
    await provider.close()
