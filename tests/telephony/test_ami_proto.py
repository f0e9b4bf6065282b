"""The sans-IO AMI parser and serializer, on the real capture bytes."""

from __future__ import annotations

import pytest
from asterisk_replay import AMI_EOL, FROM_ASTERISK, TO_ASTERISK, parsed_in_pieces, wire_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from huifang.errors import InvalidPhoneNumber, ProtocolInjection
from huifang.telephony.asterisk.ami_proto import (
    AmiGreeting,
    AmiMessage,
    AmiParser,
    AmiPeerError,
    caller_id,
    dial_string,
    originate_headers,
    serialize_action,
    variable_header,
)

ALL_AMI = [
    "ami-bad-login.log",
    "ami-ping-and-errors.log",
    "ami-originate-answered-dtmf1.log",
    "ami-originate-answered-dtmf2-speech.log",
    "ami-originate-answer-then-hangup.log",
    "ami-originate-busy.log",
    "ami-originate-no-answer.log",
    "ami-originate-congestion.log",
]


def parse_all(data: bytes, cuts: list[int] = ()) -> list:
    return parsed_in_pieces(AmiParser(), data, cuts)


def separate_args(text: str) -> list[str]:
    """Asterisk's AST_STANDARD_APP_ARGS on a `Variable` header (app.c, remove_chars on)."""
    args, current, paren, bracket, quote, i = [], [], 0, 0, False, 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            paren += 1
        elif ch == ")" and paren:
            paren -= 1
        elif ch == "[":
            bracket += 1
        elif ch == "]" and bracket:
            bracket -= 1
        if ch == '"':
            quote = not quote
        elif ch == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 1
        elif ch == "," and not (paren or quote or bracket):
            args.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    args.append("".join(current))
    return args


@pytest.mark.parametrize("capture", ALL_AMI)
def test_capture_parses_into_greeting_then_messages(capture: str) -> None:
    items = parse_all(wire_bytes(capture, FROM_ASTERISK, AMI_EOL))
    assert items[0] == AmiGreeting("Asterisk Call Manager/11.0.0")
    assert all(isinstance(item, AmiMessage) for item in items[1:])
    assert len(items) > 1


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_of_the_bytes_gives_the_same_messages(data: st.DataObject) -> None:
    capture = data.draw(st.sampled_from(ALL_AMI))
    raw = wire_bytes(capture, FROM_ASTERISK, AMI_EOL)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=30))
    assert parse_all(raw, cuts) == parse_all(raw)


def test_originate_response_is_an_event_even_with_a_response_header() -> None:
    items = parse_all(wire_bytes("ami-originate-busy.log", FROM_ASTERISK, AMI_EOL))
    (response,) = [m for m in items[1:] if m.event == "OriginateResponse"]
    assert response.is_event and response.response == ""
    assert (response.get("Reason"), response.action_id, response.get("uniqueid")) == (
        "5",
        "orig-3",
        "huifang-1003",
    )


def test_empty_header_value_is_kept_empty() -> None:
    items = parse_all(wire_bytes("ami-originate-busy.log", FROM_ASTERISK, AMI_EOL))
    newchannel = next(m for m in items[1:] if m.event == "Newchannel")
    assert "AccountCode" in newchannel and newchannel.get("AccountCode") == ""


def test_a_peer_that_is_not_asterisk_is_refused() -> None:
    with pytest.raises(AmiPeerError, match="not an Asterisk manager"):
        AmiParser().feed(b"SSH-2.0-OpenSSH_9.6\r\n")


def test_an_endless_message_is_refused() -> None:
    parser = AmiParser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(AmiPeerError, match="larger than"):
        for _ in range(40_000):
            parser.feed(b"Header: " + b"x" * 30 + b"\r\n")


def test_serialized_originate_equals_the_captured_bytes() -> None:
    sent = wire_bytes("ami-originate-busy.log", TO_ASTERISK, AMI_EOL)
    login = serialize_action("Login", "login-1", [("Username", "huifang"), ("Secret", "s3cret")])
    headers = originate_headers(
        channel=dial_string("Local/{number}@citizens", "+8613800000003"),
        context="survey",
        channel_id="huifang-1003",
        timeout_ms=15000,
        caller_id=caller_id("Huifang", "110"),
        variables={"HUIFANG_CALL_ID": "1003"},
    )
    assert login + serialize_action("Originate", "orig-3", headers) == sent


@pytest.mark.parametrize("bad", ["\r", "\n", "\x00", "\x7f", "\x1b", "\t"])
@pytest.mark.parametrize("where", ["value", "variable", "caller_name", "caller_number"])
def test_control_characters_are_refused_before_any_byte(bad: str, where: str) -> None:
    payload = f"1{bad}Action: Originate"
    with pytest.raises(ProtocolInjection):
        match where:
            case "value":
                serialize_action("Originate", "a1", [("Channel", payload)])
            case "variable":
                variable_header("HUIFANG_NOTE", payload)
            case "caller_name":
                caller_id(payload, "110")
            case "caller_number":
                caller_id("Huifang", payload)


def test_an_action_smuggled_through_a_value_is_refused() -> None:
    with pytest.raises(ProtocolInjection):
        serialize_action(
            "Ping", "p1", [("Channel", "x\r\n\r\nAction: Command\r\nCommand: core stop now")]
        )


def test_header_names_must_be_tokens() -> None:
    with pytest.raises(ProtocolInjection):
        serialize_action("Ping", "p1", [("Bad Name:", "x")])


@given(
    st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters="\x7f"),
        max_size=40,
    )
)
def test_variable_values_survive_asterisks_comma_splitting(value: str) -> None:
    name, text = variable_header("HUIFANG_NOTE", value)
    assert name == "Variable"
    (only,) = separate_args(text)
    assert only == f"HUIFANG_NOTE={value}"


def test_a_comma_cannot_add_a_second_variable() -> None:
    _, text = variable_header("HUIFANG_NOTE", "x,HUIFANG_CALL_ID=9999")
    assert separate_args(text) == ["HUIFANG_NOTE=x,HUIFANG_CALL_ID=9999"]


@pytest.mark.parametrize("name", ["", "1X", "A=B", "A B", "A\r\nB"])
def test_variable_names_are_identifiers(name: str) -> None:
    with pytest.raises(ProtocolInjection):
        variable_header(name, "1")


@pytest.mark.parametrize(
    ("template", "phone", "channel"),
    [
        ("PJSIP/{number}@trunk", "+8613800000001", "PJSIP/13800000001@trunk"),
        ("PJSIP/{number}@trunk", "+861062345678", "PJSIP/01062345678@trunk"),
        ("PJSIP/{number}@trunk", "+14155550100", "PJSIP/0014155550100@trunk"),
        ("PJSIP/{e164}@trunk", "+8613800000001", "PJSIP/+8613800000001@trunk"),
        ("Local/{digits}@citizens", "+8613800000001", "Local/8613800000001@citizens"),
    ],
)
def test_dial_string_fills_the_template_from_the_number(
    template: str, phone: str, channel: str
) -> None:
    assert dial_string(template, phone) == channel


@pytest.mark.parametrize(
    "phone",
    [
        "13800000001",
        "+86138\r\n00000001",
        "+8613800000001\x00",
        "+86 138 0000 0001",
        "+86138&1",
        "",
    ],
)
def test_dial_string_takes_only_a_number_in_e164(phone: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        dial_string("PJSIP/{number}@trunk", phone)


def test_dial_string_does_not_parse_the_number_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validated once when it entered the system, a number is carried as it is."""
    import phonenumbers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers was called at dial time")

    for name in ("parse", "is_valid_number", "format_out_of_country_calling_number"):
        monkeypatch.setattr(phonenumbers, name, refuse)
    assert dial_string("PJSIP/{number}@trunk", "+861062345678") == "PJSIP/01062345678@trunk"


def test_caller_id_refuses_quotes_in_the_name() -> None:
    with pytest.raises(ProtocolInjection):
        caller_id('Hui"fang', "110")
