"""Every TwiML rendering is XML using only the verbs, nouns and attributes Twilio documents,
with values of the documented shape."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.ivr.actions import Collect, Hangup, Play, Prompt, Record, SetVariable, Transfer
from huifang.ivr.events import DigitsReceived, NoInput, RecordingFinished, SpeechRecognized
from huifang.telephony.twilio.twiml import (
    TurnUrls,
    render_hangup,
    render_turn,
    turn_event,
)

URLS = TurnUrls(
    "https://h.example/webhooks/twilio/voice?attempt=1&step=3",
    "https://h.example/webhooks/twilio/recording?attempt=1&step=3",
)

# Twilio's TwiML voice reference: element → (attributes allowed, children allowed, text allowed)
SCHEMA: dict[str, tuple[set[str], set[str], bool]] = {
    "Response": (set(), {"Say", "Play", "Gather", "Record", "Hangup", "Enqueue", "Redirect", "Pause"}, False),
    "Say": ({"voice", "language", "loop"}, set(), True),
    "Play": ({"loop", "digits"}, set(), True),
    "Pause": ({"length"}, set(), False),
    "Hangup": (set(), set(), False),
    "Redirect": ({"method"}, set(), True),
    "Enqueue": ({"action", "method", "waitUrl", "waitUrlMethod", "workflowSid"}, set(), True),
    "Gather": (
        {
            "action", "method", "timeout", "speechTimeout", "maxSpeechTime", "profanityFilter",
            "finishOnKey", "numDigits", "partialResultCallback", "partialResultCallbackMethod",
            "language", "hints", "bargeIn", "debug", "actionOnEmptyResult", "speechModel",
            "enhanced", "input",
        },
        {"Say", "Play", "Pause"},
        False,
    ),
    "Record": (
        {
            "action", "method", "timeout", "finishOnKey", "maxLength", "playBeep", "trim",
            "recordingStatusCallback", "recordingStatusCallbackMethod",
            "recordingStatusCallbackEvent", "storageUrl", "storageUrlMethod", "transcribe",
            "transcribeCallback",
        },
        set(),
        False,
    ),
}  # fmt: skip
BOOLEAN = {"actionOnEmptyResult", "playBeep", "bargeIn", "profanityFilter", "debug", "enhanced"}
POSITIVE_INT = {"timeout", "numDigits", "maxLength", "length", "loop"}
URL_ATTRIBUTES = {"action", "recordingStatusCallback", "waitUrl"}


def check_twiml(document: str) -> ET.Element:
    root = ET.fromstring(document.encode("utf-8"))
    assert root.tag == "Response"
    _check(root)
    return root


def _check(element: ET.Element) -> None:
    attributes, children, text = SCHEMA[element.tag]
    assert set(element.attrib) <= attributes, f"{element.tag}: {set(element.attrib) - attributes}"
    if not text:
        assert not (element.text or "").strip(), f"{element.tag} carries text"
    for name, value in element.attrib.items():
        if name in BOOLEAN:
            assert value in ("true", "false"), f"{element.tag}@{name}={value}"
        if name in POSITIVE_INT:
            assert value.isdigit() and int(value) > 0, f"{element.tag}@{name}={value}"
        if name in URL_ATTRIBUTES:
            assert value.startswith("https://"), f"{element.tag}@{name}={value}"
        if name == "method":
            assert value in ("GET", "POST")
        if name == "input":
            assert value in ("dtmf", "speech", "dtmf speech")
    for child in element:
        assert child.tag in children, f"{child.tag} inside {element.tag}"
        _check(child)


def prompt(text: str = "请问您对处警民警的态度满意吗？") -> Prompt:
    return Prompt("questions[0].prompt", text, "zh-CN")


def collect(digits: str = "123", phrases: tuple[str, ...] = ("满意", "不满意")) -> Collect:
    return Collect("attitude", digits, 1, phrases, "zh-CN", 6.0)


def test_collect_with_keys_and_speech_is_one_gather_holding_its_barge_in_prompt() -> None:
    root = check_twiml(render_turn([Play(prompt(), barge_in_digits="123"), collect()], URLS))
    [gather] = root
    assert gather.tag == "Gather" and [c.tag for c in gather] == ["Say"]
    assert gather.attrib["input"] == "dtmf speech" and gather.attrib["numDigits"] == "1"
    assert gather.attrib["hints"] == "满意, 不满意" and gather.attrib["language"] == "zh-CN"
    assert (
        gather.attrib["action"] == URLS.next_turn and gather.attrib["actionOnEmptyResult"] == "true"
    )


def test_prompts_without_barge_in_play_before_the_gather() -> None:
    root = check_twiml(render_turn([Play(prompt("您好")), Play(prompt(), "12"), collect()], URLS))
    assert [c.tag for c in root] == ["Say", "Gather"] and root[0].text == "您好"


def test_keys_only_collect_gathers_dtmf_without_speech_attributes() -> None:
    [gather] = check_twiml(render_turn([collect(phrases=())], URLS))
    assert gather.attrib["input"] == "dtmf" and "hints" not in gather.attrib


def test_speech_only_collect_gathers_speech() -> None:
    [gather] = check_twiml(render_turn([collect(digits="")], URLS))
    assert gather.attrib["input"] == "speech" and "numDigits" not in gather.attrib


def test_hash_as_an_answer_key_disables_finish_on_key() -> None:
    [gather] = check_twiml(render_turn([collect(digits="12#")], URLS))
    assert gather.attrib["finishOnKey"] == ""


def test_record_reports_its_file_to_the_recording_callback() -> None:
    root = check_twiml(render_turn([Play(prompt()), Record("reason", 60, 3)], URLS))
    record = root[1]
    assert root[2].tag == "Redirect" and root[2].text == URLS.next_turn
    assert record.attrib["recordingStatusCallback"] == URLS.recording_status
    assert (record.attrib["maxLength"], record.attrib["timeout"], record.attrib["playBeep"]) == (
        "60",
        "3",
        "true",
    )


def test_closing_prompt_then_hangup() -> None:
    root = check_twiml(render_turn([Play(prompt("再见")), SetVariable("x", "1"), Hangup()], URLS))
    assert [c.tag for c in root] == ["Say", "Hangup"]


def test_transfer_enqueues_the_caller() -> None:
    root = check_twiml(render_turn([Transfer("agents")], URLS))
    assert root[0].tag == "Enqueue" and root[0].text == "agents"


def test_recorded_prompt_audio_is_played_instead_of_spoken() -> None:
    root = check_twiml(
        render_turn([Play(prompt())], URLS, audio_url=lambda p: "https://h.example/a.wav")
    )
    assert root[0].tag == "Play" and root[0].text == "https://h.example/a.wav"


def test_hangup_document_is_valid() -> None:
    assert [c.tag for c in check_twiml(render_hangup())] == ["Hangup"]


prompts = st.builds(
    Play,
    prompt=st.builds(
        Prompt,
        key=st.just("k"),
        text=st.text(min_size=1).filter(str.strip),
        language=st.sampled_from(["zh-CN", "en-US"]),
    ),
    barge_in_digits=st.sampled_from(["", "123", "9"]),
)
inputs = st.one_of(
    st.builds(
        Collect,
        question_id=st.just("q"),
        digits=st.sampled_from(["", "12", "123#"]),
        max_digits=st.integers(1, 4),
        phrases=st.lists(st.text(min_size=1, max_size=8), max_size=4).map(tuple),
        language=st.just("zh-CN"),
        timeout_seconds=st.floats(0.5, 30),
    ).filter(lambda c: c.wants_digits or c.wants_speech),
    st.builds(
        Record,
        question_id=st.just("r"),
        max_seconds=st.integers(1, 120),
        silence_seconds=st.integers(1, 10),
    ),
    st.just(Hangup()),
)


@given(st.lists(prompts, max_size=4), inputs)
def test_any_turn_renders_documented_twiml(
    plays: list[Play], last: Collect | Record | Hangup
) -> None:
    root = check_twiml(render_turn([*plays, last], URLS))
    assert len(list(root.iter("Say"))) == len(plays)


@pytest.mark.parametrize(
    ("params", "event"),
    [
        ({"Digits": "2"}, DigitsReceived("2")),
        ({"SpeechResult": "基本满意", "Confidence": "0.87"}, SpeechRecognized("基本满意", 0.87)),
        ({"SpeechResult": "满意", "Confidence": "not a number"}, SpeechRecognized("满意", 0.0)),
        ({}, NoInput()),
        ({"Digits": "", "SpeechResult": " "}, NoInput()),
        (
            {
                "RecordingUrl": "https://api.twilio.com/R1",
                "RecordingDuration": "7",
                "Digits": "hangup",
            },
            RecordingFinished("/r/1-3.wav", 7.0),
        ),
        ({"RecordingUrl": "https://api.twilio.com/R1", "RecordingDuration": "0"}, NoInput()),
    ],
)
def test_turn_event_reads_what_the_citizen_did(params: dict[str, str], event) -> None:
    assert turn_event(params, recording_path="/r/1-3.wav") == event
