"""The sans-IO FastAGI parser and command builders, on the real capture bytes."""

from __future__ import annotations

import pytest
from asterisk_replay import (
    AGI_EOL,
    FROM_ASTERISK,
    TO_ASTERISK,
    capture_lines,
    parsed_in_pieces,
    wire_bytes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from huifang.errors import ProtocolInjection
from huifang.telephony.asterisk import agi_proto as agi
from huifang.telephony.asterisk.agi_proto import AgiEnvironment, AgiHangup, AgiParser, AgiReply

ALL_AGI = ["agi-answered-dtmf1.log", "agi-answered-dtmf2-speech.log", "agi-answer-then-hangup.log"]


def parse_all(data: bytes, cuts: list[int] = ()) -> list:
    return parsed_in_pieces(AgiParser(), data, cuts)


def kinds(items: list) -> list[str]:
    return [
        "hangup"
        if isinstance(i, AgiHangup)
        else "env"
        if isinstance(i, AgiEnvironment)
        else str(i.code)
        for i in items
    ]


def test_dtmf2_capture_reads_as_environment_replies_and_an_out_of_band_hangup() -> None:
    items = parse_all(wire_bytes("agi-answered-dtmf2-speech.log", FROM_ASTERISK, AGI_EOL))
    assert kinds(items) == [
        "env",
        "200",
        "200",
        "200",
        "200",
        "200",
        "200",
        "hangup",
        "200",
        "510",
        "511",
    ]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_of_the_bytes_gives_the_same_items(data: st.DataObject) -> None:
    raw = wire_bytes(data.draw(st.sampled_from(ALL_AGI)), FROM_ASTERISK, AGI_EOL)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=30))
    assert parse_all(raw, cuts) == parse_all(raw)


def test_environment_exposes_uniqueid_channel_and_script() -> None:
    (env, *_) = parse_all(wire_bytes("agi-answered-dtmf1.log", FROM_ASTERISK, AGI_EOL))
    assert (env.uniqueid, env.channel, env.script) == (
        "huifang-1001",
        "Local/13800000001@citizens-00000016;1",
        "survey",
    )
    assert env.get("accountcode") == ""


def test_query_string_of_the_network_script_is_parsed() -> None:
    env = AgiEnvironment({"network_script": "survey?attempt=1001&amd=MACHINE&note="})
    assert env.script == "survey"
    assert env.query == {"attempt": "1001", "amd": "MACHINE", "note": ""}


@pytest.mark.parametrize(
    ("line", "digit", "hung_up", "data", "endpos"),
    [
        ("200 result=49 endpos=25760", "1", False, "", 25760),
        ("200 result=50 endpos=25760", "2", False, "", 25760),
        ("200 result=0 endpos=7040", "", False, "", 7040),
        ("200 result=-1 endpos=8000", "", True, "", 8000),
        ("200 result=1 (1001)", "", False, "1001", None),
        ("200 result=1 (timeout) endpos=22344", "", False, "timeout", 22344),
        ("200 result=35 (dtmf) endpos=800", "#", False, "dtmf", 800),
        ("200 result=-1 (hangup) endpos=4000", "", True, "hangup", 4000),
        ("511 Command Not Permitted on a dead channel or intercept routine", "", True, "", None),
    ],
)
def test_reply_lines_are_read(
    line: str, digit: str, hung_up: bool, data: str, endpos: int | None
) -> None:
    parser = AgiParser()
    parser.feed(b"agi_uniqueid: x\n\n")
    (reply,) = parser.feed(line.encode() + b"\n")
    assert (reply.digit, reply.hung_up, reply.data, reply.endpos) == (digit, hung_up, data, endpos)


def test_a_variable_value_with_parentheses_is_kept_whole() -> None:
    reply = agi.parse_reply("200 result=1 (a (b) c)")
    assert reply == AgiReply(200, "1", "a (b) c", None, "result=1 (a (b) c)")


def test_multi_line_usage_reply_is_one_reply() -> None:
    parser = AgiParser()
    parser.feed(b"agi_uniqueid: x\n\n")
    items = parser.feed(
        b"520-Invalid command syntax.  Proper usage follows:\nUsage: STREAM FILE\n520 End of proper usage.\n"
    )
    assert [(i.code, i.hung_up) for i in items] == [(520, False)]


def test_a_non_agi_peer_is_refused() -> None:
    with pytest.raises(agi.AgiPeerError):
        AgiParser().feed(b"GET / HTTP/1.1\n")


def test_commands_equal_the_captured_bytes() -> None:
    sent = [text for d, text in capture_lines("agi-answered-dtmf1.log") if d == TO_ASTERISK]
    built = [
        agi.answer(),
        agi.get_variable("HUIFANG_CALL_ID"),
        agi.stream_file("/tmp/astrun/prompt-q1", "12"),
        agi.stream_file("vm-goodbye"),
        agi.set_variable("HUIFANG_RESULT", "1"),
    ]
    assert [b.decode().rstrip("\n") for b in built] == [
        s for s in sent if not s.startswith("NOSUCH")
    ][:5]
    assert agi.hangup() == b"HANGUP\n"


def test_record_file_matches_the_captured_form() -> None:
    assert agi.record_file("/tmp/astrun/rec-huifang-1002", "#", 10000, 3) == (
        b'RECORD FILE /tmp/astrun/rec-huifang-1002 wav "#" 10000 0 s=3\n'
    )


def test_arguments_with_spaces_or_empty_are_quoted() -> None:
    assert (
        agi.set_variable("HUIFANG_NOTE", "two words") == b'SET VARIABLE HUIFANG_NOTE "two words"\n'
    )
    assert agi.set_variable("HUIFANG_NOTE", "") == b'SET VARIABLE HUIFANG_NOTE ""\n'


@pytest.mark.parametrize("bad", ['"', "\\", "\n", "\r", "\x00", "\x1b"])
@pytest.mark.parametrize("command", ["stream", "set", "record", "get_data", "goto"])
def test_quotes_backslashes_and_control_characters_are_refused(bad: str, command: str) -> None:
    value = f"x{bad}y HANGUP"
    with pytest.raises(ProtocolInjection):
        match command:
            case "stream":
                agi.stream_file(value, "12")
            case "set":
                agi.set_variable("HUIFANG_NOTE", value)
            case "record":
                agi.record_file(value, "#", 1000, 2)
            case "get_data":
                agi.get_data(value, 1000, 4)
            case "goto":
                agi.goto("agents", value)


@pytest.mark.parametrize("digits", ['1"', "1 2", "a", "\n"])
def test_escape_digits_are_keys_only(digits: str) -> None:
    with pytest.raises(ProtocolInjection):
        agi.stream_file("beep", digits)


@pytest.mark.parametrize("name", ["", "A B", "A\nB", "1A"])
def test_variable_names_are_identifiers(name: str) -> None:
    with pytest.raises(ProtocolInjection):
        agi.set_variable(name, "1")
