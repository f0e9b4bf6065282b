"""The pure call tracker: AMI events in, call progress out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asterisk_replay import REPO_ROOT
from hypothesis import given
from hypothesis import strategies as st

from huifang.telephony.asterisk.ami_proto import AmiMessage
from huifang.telephony.asterisk.provider import (
    AMD_USER_EVENT,
    CallTracker,
    attempt_of,
    originate_outcome,
    parse_caller_id,
)
from huifang.telephony.base import CallProgress

P = CallProgress
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def event(name: str, uniqueid: str = "huifang-7", **headers: str) -> AmiMessage:
    return AmiMessage((("Event", name), ("Uniqueid", uniqueid), *headers.items()))


def originate_response(reason: str, uniqueid: str = "huifang-7") -> AmiMessage:
    return event("OriginateResponse", uniqueid, Reason=reason)


def hangup(
    uniqueid: str = "huifang-7", cause: str = "16", text: str = "Normal Clearing"
) -> AmiMessage:
    return AmiMessage(
        (("Event", "Hangup"), ("Uniqueid", uniqueid), ("Cause", cause), ("Cause-txt", text))
    )


def amd(status: str, cause: str = "LONGGREETING-2000-1500") -> AmiMessage:
    return event("UserEvent", UserEvent=AMD_USER_EVENT, AMDStatus=status, AMDCause=cause)


def progress(tracker: CallTracker, *messages: AmiMessage) -> list[tuple[CallProgress, str]]:
    return [(e.progress, e.cause) for m in messages for e in tracker.observe(m, AT)]


@pytest.fixture
def tracker() -> CallTracker:
    t = CallTracker()
    t.expect(7)
    return t


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("4", (P.answered, "")),
        ("5", (P.busy, "busy")),
        ("3", (P.no_answer, "no_answer")),
        ("8", (P.failed, "congestion")),
        ("1", (P.no_answer, "hangup_before_answer")),
        ("0", (P.failed, "failure")),
        ("2", (P.failed, "reason 2")),
    ],
)
def test_originate_reasons_map_to_progress(reason: str, expected: tuple[CallProgress, str]) -> None:
    assert originate_outcome(reason) == expected


def test_answered_then_hangup_is_abandoned_unless_the_survey_ended_it(tracker: CallTracker) -> None:
    assert progress(tracker, originate_response("4"), hangup()) == [
        (P.answered, ""),
        (P.abandoned, "16 Normal Clearing"),
    ]


def test_a_machine_ends_the_call_as_machine(tracker: CallTracker) -> None:
    assert progress(tracker, originate_response("4"), amd("MACHINE"), hangup()) == [
        (P.answered, ""),
        (P.machine, "LONGGREETING-2000-1500"),
    ]


@pytest.mark.parametrize("status", ["HUMAN", "NOTSURE"])
def test_a_human_or_unsure_amd_result_changes_nothing(tracker: CallTracker, status: str) -> None:
    assert progress(tracker, originate_response("4"), amd(status)) == [(P.answered, "")]


def test_only_our_own_channel_counts(tracker: CallTracker) -> None:
    assert (
        progress(
            tracker,
            hangup("huifang-7;2", "19", "User alerting, no answer"),
            originate_response("4", "huifang-8"),
            hangup("1795476555.42"),
        )
        == []
    )


def test_ringing_is_reported_once_before_the_outcome(tracker: CallTracker) -> None:
    ringing = event("Newstate", ChannelState="5", ChannelStateDesc="Ringing")
    assert progress(tracker, ringing, ringing, originate_response("3")) == [
        (P.ringing, ""),
        (P.no_answer, "no_answer"),
    ]


def test_a_hangup_before_the_outcome_waits_for_it(tracker: CallTracker) -> None:
    assert progress(tracker, hangup(cause="17", text="User busy"), originate_response("5")) == [
        (P.busy, "busy")
    ]


_EVENTS = st.sampled_from(
    [originate_response(r) for r in "013458"]
    + [hangup(), amd("MACHINE"), event("Newstate", ChannelState="5")]
)


@given(st.lists(_EVENTS, max_size=12))
def test_at_most_one_final_event_per_call(messages: list[AmiMessage]) -> None:
    tracker = CallTracker()
    tracker.expect(7)
    finals = [p for p, _ in progress(tracker, *messages) if p.is_final]
    assert len(finals) <= 1


def test_reconcile_follows_live_calls_and_fails_lost_ones() -> None:
    tracker = CallTracker()
    for attempt_id in (1, 2, 3, 4):
        tracker.expect(attempt_id)
    tracker.observe(originate_response("4", "huifang-3"), AT)
    tracker.observe(originate_response("4", "huifang-4"), AT)
    events = tracker.reconcile([1, 2, 3, 4], {"huifang-1": "6", "huifang-4": "6"}, AT)
    assert [(e.attempt_id, e.progress, e.cause) for e in events] == [
        (1, P.answered, "reconciled"),
        (2, P.failed, "lost_in_disconnect"),
        (3, P.abandoned, "hangup_unseen"),
    ]
    assert tracker.live() == [1, 4]


def test_attempt_ids_come_from_our_channel_ids_only() -> None:
    assert attempt_of("huifang-1002") == 1002
    assert attempt_of("huifang-1002;2") is None
    assert attempt_of("1795476555.42") is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [('"Huifang" <110>', ("Huifang", "110")), ("110", ("", "110")), ("", ("", ""))],
)
def test_caller_id_setting_is_parsed(text: str, parsed: tuple[str, str]) -> None:
    assert parse_caller_id(text) == parsed


CONFIG = REPO_ROOT / "config" / "asterisk"


def test_the_shipped_dialplan_speaks_to_this_code() -> None:
    dialplan = (CONFIG / "extensions.conf").read_text()
    assert f"UserEvent({AMD_USER_EVENT},AMDStatus: ${{AMDSTATUS}}" in dialplan
    assert "/survey?attempt=${HUIFANG_CALL_ID}&amd=${AMDSTATUS})" in dialplan


def test_the_shipped_ami_user_has_least_privilege() -> None:
    manager = (CONFIG / "manager.conf").read_text()
    rights = dict(
        line.replace(" ", "").split("=", 1)
        for line in manager.splitlines()
        if line.startswith(("read ", "write "))
    )
    assert rights == {"read": "call,user", "write": "originate,reporting"}
