"""A click-to-call's line through the AMI events of its agent channel (`bridge_step`):
the agent's leg rings, comes up and dials the citizen, who answers or not; Hangup ends it."""

from __future__ import annotations

import pytest

from huifang.telephony.asterisk.ami_proto import AmiMessage
from huifang.telephony.asterisk.provider import bridge_step
from huifang.telephony.base import BridgeProgress as B

CALL = "huifang-bridge-0a1b2c3d4e5f"


def event(name: str, **headers: str) -> AmiMessage:
    return AmiMessage((("Event", name), ("Uniqueid", CALL), *headers.items()))


def walk(*events: AmiMessage) -> B:
    progress = B.ringing_agent
    for message in events:
        progress = bridge_step(progress, message)
    return progress


def test_the_citizen_answering_connects_the_call() -> None:
    assert (
        walk(
            event("Newstate", ChannelState="5"),
            event("OriginateResponse", Reason="4"),
            event("DialBegin"),
            event("DialEnd", DialStatus="ANSWER"),
        )
        is B.connected
    )


def test_dialling_the_citizen_rings_the_citizen() -> None:
    assert walk(event("OriginateResponse", Reason="4"), event("DialBegin")) is B.ringing_citizen


@pytest.mark.parametrize(
    ("status", "progress"),
    [("BUSY", B.citizen_busy), ("NOANSWER", B.citizen_no_answer), ("CHANUNAVAIL", B.failed)],
)
def test_the_citizen_leg_failing_says_how(status: str, progress: B) -> None:
    assert walk(event("DialBegin"), event("DialEnd", DialStatus=status)) is progress


def test_the_agent_not_answering_is_not_the_citizens_fault() -> None:
    assert walk(event("OriginateResponse", Reason="3")) is B.agent_no_answer


def test_a_hangup_ends_a_connected_call_and_nothing_moves_it_after() -> None:
    ended = walk(event("DialEnd", DialStatus="ANSWER"), event("Hangup", Cause="16"))
    assert ended is B.ended
    assert bridge_step(ended, event("DialBegin")) is B.ended


def test_a_failed_leg_stays_failed_through_the_hangup() -> None:
    assert walk(event("DialEnd", DialStatus="BUSY"), event("Hangup")) is B.citizen_busy
