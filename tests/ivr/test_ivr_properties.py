"""Property tests: whatever a phone network reports, in whatever order, the interpreter
never raises, always asks for exactly one input or ends the call, and ends in a result."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ivr_support import ends_call, mini_script_doc, waiting_for

from huifang.domain.enums import Satisfaction
from huifang.ivr.codec import event_to_dict, replay
from huifang.ivr.events import (
    CallStarted,
    DigitsReceived,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.ivr.interpreter import Session
from huifang.ivr.script import (
    ScriptError,
    ScriptInvalid,
    builtin_script,
    parse_script_mapping,
    validate_script_text,
)
from huifang.ivr.template import sample_variables

SCRIPTS = {
    name: builtin_script(name)
    for name in (
        "survey-110.zh-CN",
        "survey-110.en-US",
        "second-callback.zh-CN",
        "second-callback.en-US",
    )
}
PHRASES = sorted(
    {p for s in SCRIPTS.values() for q in s.questions for c in q.choices for p in c.phrases}
)

events = st.one_of(
    st.just(NoInput()),
    st.just(CallStarted()),
    st.builds(DigitsReceived, st.text(alphabet="0123456789*#", max_size=3)),
    st.builds(
        SpeechRecognized,
        st.one_of(st.sampled_from(PHRASES), st.text(max_size=12)),
        st.floats(min_value=0, max_value=1),
    ),
    st.builds(
        RecordingFinished,
        st.just("/rec/x.wav"),
        st.floats(min_value=0, max_value=120),
        st.text(max_size=12),
        st.floats(min_value=0, max_value=1),
    ),
)
# hang-ups are rare so that most sequences get deep into the script
with_hang_ups = st.one_of(events, events, events, st.just(HungUp()))


def _session(name: str) -> Session:
    script = SCRIPTS[name]
    return Session(script, sample_variables(script.language.value))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SCRIPTS)), st.lists(with_hang_ups, max_size=30))
def test_any_event_sequence_gets_one_input_or_the_end_each_time(name, sequence):
    session = _session(name)
    batches = [session.start(), *(session.feed(event) for event in sequence)]
    for batch in batches:
        if batch:
            assert waiting_for(batch) or ends_call(batch)
    if not session.finished:
        asked = [b for b in batches if b][-1]
        assert waiting_for(asked) is not None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SCRIPTS)), st.lists(with_hang_ups, max_size=30))
def test_silence_after_any_sequence_ends_the_call_with_a_result(name, sequence):
    session = _session(name)
    session.start()
    for event in sequence:
        session.feed(event)
    for _ in range(100):
        if session.finished:
            break
        session.feed(NoInput())
    assert session.finished
    result = session.result()
    assert result.completed != result.hung_up
    assert result.escalate == any(a.outcome == Satisfaction.unsatisfied for a in result.answers)
    assert session.feed(DigitsReceived("1")) == []


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SCRIPTS)), st.lists(with_hang_ups, max_size=25))
def test_the_partial_result_only_grows(name, sequence):
    session = _session(name)
    session.start()
    earlier = session.result().answers
    for event in sequence:
        session.feed(event)
        answers = session.result().answers
        assert answers[: len(earlier)] == earlier
        earlier = answers


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SCRIPTS)), st.lists(with_hang_ups, max_size=25))
def test_replaying_the_logged_events_rebuilds_the_same_call(name, sequence):
    live = _session(name)
    log = [event_to_dict(CallStarted())]
    latest = live.start()
    for event in sequence:
        log.append(event_to_dict(event))
        latest = live.feed(event)
    script = SCRIPTS[name]
    rebuilt, actions = replay(script, sample_variables(script.language.value), log)
    assert rebuilt.result() == live.result()
    assert rebuilt.finished == live.finished
    assert actions == latest


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_either_a_script_or_a_list_of_errors(text):
    for error in validate_script_text(text):
        assert isinstance(error, ScriptError) and str(error)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_field_set_to_any_value_is_accepted_or_refused_with_paths(data):
    doc = mini_script_doc()
    question = data.draw(st.integers(min_value=0, max_value=len(doc["questions"]) - 1))
    target = data.draw(st.sampled_from([doc, doc["defaults"], doc["questions"][question]]))
    field = data.draw(st.sampled_from([*target, "next", "choices", "prompt", "digit"]))
    target[field] = data.draw(json_values)
    try:
        parse_script_mapping(doc)
    except ScriptInvalid as invalid:
        assert invalid.errors and all(str(error) for error in invalid.errors)
