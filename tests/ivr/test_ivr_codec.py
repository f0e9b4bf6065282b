"""Events, actions and results as plain JSON, and replay of a logged call."""

from __future__ import annotations

import json

import pytest

from huifang.ivr.actions import Collect
from huifang.ivr.codec import event_from_dict, event_to_dict, replay, result_to_dict
from huifang.ivr.events import (
    CallStarted,
    DigitsReceived,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.ivr.script import builtin_script
from huifang.ivr.template import sample_variables

EVERY_EVENT = [
    CallStarted(),
    DigitsReceived("3"),
    SpeechRecognized("不 满意", 0.82),
    RecordingFinished("/rec/a.wav", 7.5, "来得太慢", 0.6),
    NoInput(),
    HungUp(),
]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: type(e).__name__)
def test_every_event_survives_json(event):
    assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


@pytest.mark.parametrize(
    "raw",
    [{"type": "dance"}, {"digits": "1"}, {"type": "digits", "digits": "1", "extra": True}],
)
def test_a_corrupt_log_entry_is_refused(raw):
    with pytest.raises(ValueError):
        event_from_dict(raw)


def test_results_become_plain_json():
    script = builtin_script("survey-110.en-US")
    session, _ = replay(
        script,
        sample_variables("en-US"),
        [event_to_dict(e) for e in (CallStarted(), DigitsReceived("1"), DigitsReceived("3"))],
    )
    plain = result_to_dict(session.result())
    assert json.loads(json.dumps(plain)) == plain
    assert plain["answers"][1]["outcome"] == "unsatisfied"
    assert plain["answers"][1]["mode"] == "dtmf"


def test_replay_returns_what_the_provider_should_be_doing_now():
    script = builtin_script("survey-110.en-US")
    log = [event_to_dict(CallStarted()), event_to_dict(DigitsReceived("1"))]
    _, actions = replay(script, sample_variables("en-US"), log)
    assert isinstance(actions[-1], Collect) and actions[-1].question_id == "attitude"
