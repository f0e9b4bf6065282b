"""The interpreter, path by path: events in, actions and a result out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from ivr_support import ends_call, keys, press, texts, waiting_for

from huifang.domain.enums import Satisfaction
from huifang.ivr.actions import Collect, Hangup, Play, Record, SetVariable, Transfer
from huifang.ivr.events import (
    CallStarted,
    DigitsReceived,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.ivr.interpreter import MissingVariables, Session, classifier_matcher, match_phrase
from huifang.ivr.result import AnswerMode
from huifang.ivr.script import Choice, builtin_script
from huifang.ivr.template import sample_variables

# --- starting


def test_start_greets_then_asks_the_confirmation(call):
    c = call("survey-110.en-US")
    assert keys(c.last) == ["greeting", "questions[0].prompt"]
    collect = waiting_for(c.last)
    assert isinstance(collect, Collect)
    assert (collect.question_id, collect.digits, collect.max_digits) == ("confirm", "190", 1)
    assert collect.phrases == ()


def test_every_prompt_before_a_key_collection_can_be_interrupted_by_its_keys(call):
    c = call("survey-110.en-US")
    assert [p.barge_in_digits for p in c.last if isinstance(p, Play)] == ["190", "190"]


def test_greeting_speaks_the_incident_variables(call):
    c = call("survey-110.zh-CN", incident_date="3月5日", source="110")
    assert "您于3月5日" in texts(c.last)[1]


def test_start_a_second_time_does_nothing(call):
    c = call("survey-110.en-US")
    assert c.session.start() == []


def test_call_started_event_starts_the_session():
    session = Session(builtin_script("survey-110.en-US"), _en_vars())
    actions = session.feed(CallStarted())
    assert isinstance(actions[-1], Collect)


def test_input_before_the_call_started_is_ignored():
    session = Session(builtin_script("survey-110.en-US"), _en_vars())
    assert session.feed(DigitsReceived("1")) == []
    assert not session.finished
    assert session.result().answers == ()


def test_a_duplicate_call_started_mid_call_changes_nothing(call):
    c = call("survey-110.en-US")
    assert c.feed(CallStarted()) == []
    assert isinstance(c.session.feed(DigitsReceived("1"))[-1], Collect)


def test_missing_variables_are_refused_when_the_session_is_built():
    with pytest.raises(MissingVariables) as raised:
        Session(builtin_script("survey-110.en-US"), {"source": "110"})
    assert "incident_date" in raised.value.names


def test_variable_values_with_braces_are_spoken_as_they_are(call):
    c = call("survey-110.en-US", source="{unit_name}")
    assert "your call to {unit_name} on" in texts(c.last)[1]


# --- answering by keys, barge-in


def test_a_key_answers_and_the_next_question_is_asked(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"))
    assert keys(actions) == ["questions[1].prompt"]
    assert waiting_for(actions).question_id == "attitude"


def test_barge_in_during_the_greeting_answers_the_pending_question(call):
    # the provider skipped the rest of the prompts when 1 was pressed over the greeting
    c = call("survey-110.en-US")
    c.feed(DigitsReceived("1"))
    answer = c.session.result().answers[0]
    assert (answer.question_id, answer.value, answer.mode) == ("confirm", "1", AnswerMode.dtmf)


def test_key_answers_carry_the_choice_outcome(call):
    c = call("survey-110.en-US")
    c.feed(*press("12"))
    answer = c.session.result().answers[1]
    assert (answer.dimension, answer.outcome) == ("attitude", Satisfaction.basically_satisfied)


def test_a_key_that_is_no_choice_is_invalid_and_the_question_is_asked_again(call):
    c = call("survey-110.en-US")
    actions = c.feed(*press("17"))
    assert keys(actions) == ["defaults.invalid_prompt", "questions[1].prompt"]
    assert waiting_for(actions).question_id == "attitude"


def test_several_keys_at_once_are_not_one_choice(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), DigitsReceived("12"))
    assert keys(actions)[0] == "defaults.invalid_prompt"


def test_invalid_answers_beyond_the_retries_leave_the_question_unclear_and_go_on(call):
    c = call("survey-110.en-US")
    actions = c.feed(*press("1789"))
    assert waiting_for(actions).question_id == "arrival_time"
    answer = c.session.result().answers[1]
    assert (answer.outcome, answer.mode, answer.value) == (
        Satisfaction.unclear,
        AnswerMode.none,
        "",
    )


# --- silence


def test_silence_plays_the_no_input_prompt_and_asks_again(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), NoInput())
    assert keys(actions) == ["defaults.no_input_prompt", "questions[1].prompt"]


def test_empty_digits_count_as_silence(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), DigitsReceived(""))
    assert keys(actions)[0] == "defaults.no_input_prompt"


def test_silence_at_the_confirmation_hangs_up_without_surveying(call):
    # an answering machine presses nothing: no question is put to it
    c = call("survey-110.en-US")
    actions = c.feed(NoInput(), NoInput(), NoInput())
    assert actions == [Hangup()]
    result = c.session.result()
    assert [a.dimension for a in result.answers] == ["confirm"]
    assert result.outcome == Satisfaction.unclear
    assert not result.escalate


def test_silence_and_invalid_retries_are_counted_separately(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), NoInput(), NoInput(), *press("78"))
    assert waiting_for(actions).question_id == "attitude"


def test_retry_counts_start_again_on_the_next_question(call):
    c = call("survey-110.en-US")
    c.feed(DigitsReceived("1"), NoInput(), NoInput(), DigitsReceived("1"))
    actions = c.feed(NoInput(), NoInput())
    assert waiting_for(actions).question_id == "arrival_time"


# --- speech


def test_speech_is_matched_against_the_choice_phrases(call):
    c = call("survey-110.en-US")
    c.feed(DigitsReceived("1"), SpeechRecognized("yes I was very satisfied", 0.9))
    answer = c.session.result().answers[1]
    assert (answer.outcome, answer.mode, answer.confidence) == (
        Satisfaction.satisfied,
        AnswerMode.speech,
        0.9,
    )
    assert answer.transcript == "yes I was very satisfied"


def test_chinese_unsatisfied_is_not_read_as_satisfied(call):
    c = call("survey-110.zh-CN")
    c.feed(DigitsReceived("1"), SpeechRecognized("不 满意", 0.9))
    assert c.session.result().answers[1].outcome == Satisfaction.unsatisfied


def test_speech_matching_no_phrase_is_invalid(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), SpeechRecognized("what is this about", 0.95))
    assert keys(actions)[0] == "defaults.invalid_prompt"
    assert waiting_for(actions).phrases  # still listening for speech


def test_low_confidence_speech_asks_again_by_keys_only(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), SpeechRecognized("satisfied", 0.4))
    assert keys(actions) == ["defaults.low_confidence_prompt", "questions[1].prompt"]
    collect = waiting_for(actions)
    assert (collect.digits, collect.phrases) == ("123", ())


def test_after_the_fallback_to_keys_speech_is_not_accepted(call):
    c = call("survey-110.en-US")
    actions = c.feed(
        DigitsReceived("1"), SpeechRecognized("satisfied", 0.4), SpeechRecognized("satisfied", 0.99)
    )
    assert keys(actions)[0] == "defaults.invalid_prompt"


def test_after_the_fallback_a_key_answers(call):
    c = call("survey-110.en-US")
    c.feed(DigitsReceived("1"), SpeechRecognized("satisfied", 0.4), DigitsReceived("3"))
    assert c.session.result().answers[1].outcome == Satisfaction.unsatisfied


def test_the_next_question_listens_for_speech_again(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("1"), SpeechRecognized("satisfied", 0.4), DigitsReceived("1"))
    assert waiting_for(actions).phrases


def test_low_confidence_threshold_is_the_scripts(make_script, mini_doc):
    mini_doc["low_confidence"] = 0.95
    session = Session(make_script(mini_doc), {"unit_name": "X", "incident_date": "d"})
    session.start()
    actions = session.feed(SpeechRecognized("good", 0.9))
    assert keys(actions)[0] == "defaults.low_confidence_prompt"


def test_low_confidence_on_a_speech_only_question_asks_again_by_speech(make_script, mini_doc):
    mini_doc["questions"][0]["input"] = "speech"
    for choice in mini_doc["questions"][0]["choices"]:
        del choice["digit"]
    session = Session(make_script(mini_doc), {"unit_name": "X", "incident_date": "d"})
    session.start()
    actions = session.feed(SpeechRecognized("good", 0.2))
    collect = waiting_for(actions)
    assert collect.phrases and not collect.digits


def test_a_key_on_a_speech_only_question_is_invalid(make_script, mini_doc):
    mini_doc["questions"][0]["input"] = "speech"
    for choice in mini_doc["questions"][0]["choices"]:
        del choice["digit"]
    session = Session(make_script(mini_doc), {"unit_name": "X", "incident_date": "d"})
    session.start()
    assert keys(session.feed(DigitsReceived("1")))[0] == "defaults.invalid_prompt"


def test_speech_on_a_keys_only_question_is_invalid(call):
    c = call("survey-110.en-US")
    assert keys(c.feed(SpeechRecognized("yes", 0.99)))[0] == "defaults.invalid_prompt"


def test_a_recording_where_a_choice_was_expected_is_invalid(call):
    c = call("survey-110.en-US")
    actions = c.feed(RecordingFinished("/tmp/r.wav", 4.0))
    assert keys(actions)[0] == "defaults.invalid_prompt"


def test_a_plugged_in_speech_matcher_decides(mini):
    chosen: list[str] = []

    def always_last(text: str, choices: Any) -> Choice:
        chosen.append(text)
        return choices[-1]

    session = Session(mini, {"unit_name": "X", "incident_date": "d"}, speech_matcher=always_last)
    session.start()
    session.feed(SpeechRecognized("good", 0.9))
    assert chosen == ["good"]
    assert session.result().answers[0].outcome == Satisfaction.unsatisfied


def test_a_matcher_answer_that_is_not_one_of_the_choices_is_no_match(mini):
    def invents(text: str, choices: Any) -> Choice:
        return Choice(digit="5", outcome=Satisfaction.satisfied)

    session = Session(mini, {"unit_name": "X", "incident_date": "d"}, speech_matcher=invents)
    session.start()
    assert keys(session.feed(SpeechRecognized("good", 0.9)))[0] == "defaults.invalid_prompt"


@dataclass(frozen=True)
class FakeClassification:
    label: str
    review: bool = False


def test_a_classifier_matcher_picks_the_choice_with_the_label_given(call):
    def classify(text: str, language: str) -> FakeClassification:
        assert language == "zh-CN"
        return FakeClassification("satisfied" if text == "没什么不满意的" else "unclear")

    script = builtin_script("survey-110.zh-CN")
    session = Session(
        script, sample_variables("zh-CN"), speech_matcher=classifier_matcher(classify, "zh-CN")
    )
    session.start()
    session.feed(DigitsReceived("1"))
    session.feed(SpeechRecognized("没什么不满意的", 0.9))  # double negation: satisfied
    session.feed(SpeechRecognized("不 满意", 0.9))  # unclear to the classifier: phrases decide
    outcomes = [a.outcome for a in session.result().answers[1:]]
    assert outcomes == [Satisfaction.satisfied, Satisfaction.unsatisfied]


def test_a_classifier_matcher_leaves_unlabelled_choices_to_the_phrases():
    script = builtin_script("second-callback.zh-CN")
    matcher = classifier_matcher(lambda text, language: FakeClassification("unclear"), "zh-CN")
    session = Session(script, sample_variables("zh-CN"), speech_matcher=matcher)
    session.start()
    session.feed(DigitsReceived("1"))
    assert session.feed(SpeechRecognized("转 人工", 0.9))[-1] == Transfer("callback-agents")


@pytest.fixture
def unsure_reader_call() -> Session:
    """A 110 survey past its confirmation, read by a reader never sure of anything."""
    unsure = classifier_matcher(
        lambda text, language: FakeClassification("satisfied", True), "zh-CN"
    )
    session = Session(
        builtin_script("survey-110.zh-CN"), sample_variables("zh-CN"), speech_matcher=unsure
    )
    session.start()
    session.feed(DigitsReceived("1"))
    return session


def test_an_answer_the_reader_is_not_sure_of_is_asked_again_by_keys(unsure_reader_call):
    actions = unsure_reader_call.feed(SpeechRecognized("满意？钱包到现在都没找到", 0.9))
    assert keys(actions)[0] == "defaults.low_confidence_prompt"
    assert actions[-1].phrases == ()  # keys only now


def test_a_phrase_inside_an_answer_the_reader_is_not_sure_of_is_no_satisfied_verdict(
    unsure_reader_call,
):
    unsure_reader_call.feed(SpeechRecognized("满意？钱包到现在都没找到", 0.9))
    assert unsure_reader_call.result().answers[1:] == ()


def test_words_heard_on_a_question_left_unanswered_are_kept_as_an_unclear_answer(call):
    c = call("survey-110.zh-CN")
    c.feed(DigitsReceived("1"))
    c.feed(SpeechRecognized("那个 什么 东西", 0.9))
    c.feed(NoInput())
    c.feed(NoInput())
    c.feed(NoInput())
    kept = c.session.result().answers[1]
    assert (kept.question_id, kept.outcome, kept.transcript, kept.mode) == (
        "attitude", Satisfaction.unclear, "那个 什么 东西", AnswerMode.speech,
    )  # fmt: skip


def test_words_heard_before_a_hang_up_are_kept_as_an_unclear_answer(call):
    c = call("survey-110.zh-CN")
    c.feed(DigitsReceived("1"))
    c.feed(SpeechRecognized("那个 什么 东西", 0.9))
    c.feed(HungUp())
    assert [(a.outcome, a.transcript) for a in c.session.result().answers[1:]] == [
        (Satisfaction.unclear, "那个 什么 东西")
    ]


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("good", "1"),
        ("not good at all", "3"),
        ("Okay!", "2"),
        ("nothing useful", None),
    ],
)
def test_default_matcher_prefers_the_longest_phrase(mini, heard, expected):
    chosen = match_phrase(heard, mini.questions[0].choices)
    assert (chosen.digit if chosen else None) == expected


def test_default_matcher_gives_up_on_a_tie_between_choices(mini):
    assert match_phrase("good or okay", mini.questions[0].choices) is None


# --- complaint recording and branches


def _unsatisfied_survey(call):
    c = call("survey-110.en-US")
    actions = c.feed(*press("1131"))
    actions = c.feed(DigitsReceived("2"))
    return c, actions


def test_an_unsatisfied_answer_leads_to_a_complaint_recording(call):
    _, actions = _unsatisfied_survey(call)
    record = waiting_for(actions)
    assert isinstance(record, Record)
    assert (record.question_id, record.max_seconds, record.silence_seconds) == ("reason", 60, 4)
    assert not any(isinstance(a, Play) and a.barge_in_digits for a in actions)


def test_the_recording_is_kept_and_the_citizen_told_someone_will_call_back(call):
    c, _ = _unsatisfied_survey(call)
    actions = c.feed(
        RecordingFinished("/rec/1.wav", 12.5, transcript="they came late", confidence=0.8)
    )
    assert keys(actions) == ["questions[6].prompt", "closing"]
    assert isinstance(actions[-1], Hangup)
    reason = c.session.result().answers[-1]
    assert (reason.dimension, reason.mode, reason.recording_path) == (
        "reason",
        AnswerMode.recording,
        "/rec/1.wav",
    )
    assert (reason.transcript, reason.confidence, reason.outcome) == ("they came late", 0.8, None)


def test_the_result_escalates_an_unsatisfied_survey(call):
    c, _ = _unsatisfied_survey(call)
    c.feed(RecordingFinished("/rec/1.wav", 12.5))
    result = c.session.result()
    assert result.escalate and result.completed and not result.hung_up
    assert result.outcome == Satisfaction.basically_satisfied  # the overall answer decides


def test_a_silent_recording_is_no_input(call):
    c, _ = _unsatisfied_survey(call)
    actions = c.feed(RecordingFinished("/rec/1.wav", 0.3))
    assert keys(actions) == ["defaults.no_input_prompt", "questions[5].prompt"]
    assert isinstance(actions[-1], Record)


def test_a_key_instead_of_a_complaint_is_no_input(call):
    c, _ = _unsatisfied_survey(call)
    assert keys(c.feed(DigitsReceived("#")))[0] == "defaults.no_input_prompt"


def test_a_complaint_heard_as_speech_is_kept_as_its_transcript(call):
    c, _ = _unsatisfied_survey(call)
    c.feed(SpeechRecognized("the officer was rude", 0.7))
    reason = c.session.result().answers[-1]
    assert (reason.mode, reason.transcript, reason.recording_path) == (
        AnswerMode.speech,
        "the officer was rude",
        None,
    )


def test_no_complaint_after_the_retries_still_tells_and_closes(call):
    c, _ = _unsatisfied_survey(call)
    actions = c.feed(NoInput(), NoInput(), NoInput())
    assert keys(actions) == ["questions[6].prompt", "closing"]
    assert c.session.result().answers[-1].mode == AnswerMode.none


def test_a_satisfied_survey_skips_the_complaint_and_closes(call):
    c = call("survey-110.en-US")
    actions = c.feed(*press("11111"))
    assert keys(actions) == ["closing"]
    assert actions[-1] == Hangup()
    result = c.session.result()
    assert (result.outcome, result.escalate, result.completed) == (
        Satisfaction.satisfied,
        False,
        True,
    )
    assert [a.dimension for a in result.answers] == [
        "confirm",
        "attitude",
        "arrival_time",
        "handling",
        "overall",
    ]


def test_nine_at_the_confirmation_ends_the_call_as_not_the_caller(call):
    c = call("survey-110.en-US")
    actions = c.feed(DigitsReceived("9"))
    assert texts(actions) == ["Sorry to have disturbed you. Goodbye."]
    assert actions[-1] == Hangup()
    result = c.session.result()
    assert result.not_the_caller and not result.opted_out and not result.escalate


def test_zero_at_the_confirmation_opts_out_and_sets_a_channel_variable(call):
    c = call("survey-110.zh-CN")
    actions = c.feed(DigitsReceived("0"))
    assert actions[0] == SetVariable("HUIFANG_OPT_OUT", "1")
    assert actions[-1] == Hangup()
    result = c.session.result()
    assert result.opted_out and result.variables == {"HUIFANG_OPT_OUT": "1"}


def test_asking_for_an_agent_transfers_the_call(call):
    c = call("second-callback.en-US")
    actions = c.feed(*press("10"))
    assert texts(actions) == ["Please hold while we connect you to an agent."]
    assert actions[-1] == Transfer("callback-agents")
    assert c.session.finished and c.session.result().completed


def test_second_callback_still_unsatisfied_escalates(call):
    c = call("second-callback.zh-CN")
    c.feed(
        DigitsReceived("1"), SpeechRecognized("还是 不 满意", 0.9), RecordingFinished("/r.wav", 9.0)
    )
    result = c.session.result()
    assert [a.dimension for a in result.answers] == ["confirm", "second_callback", "reason"]
    assert (result.outcome, result.escalate) == (Satisfaction.unsatisfied, True)


def test_a_choice_can_jump_back_and_a_loop_the_citizen_keeps_choosing_ends(make_script, mini_doc):
    mini_doc["questions"][0]["choices"][1]["next"] = "attitude"
    session = Session(make_script(mini_doc), {"unit_name": "X", "incident_date": "d"}, max_steps=5)
    session.start()
    actions = [session.feed(DigitsReceived("2")) for _ in range(5)][-1]
    assert keys(actions) == ["closing"]
    assert session.finished


def test_a_say_node_is_spoken_on_the_way_to_the_next_question(make_script, mini_doc):
    mini_doc["questions"].insert(1, {"id": "thanks", "kind": "say", "prompt": "Thanks."})
    session = Session(make_script(mini_doc), {"unit_name": "X", "incident_date": "d"})
    session.start()
    actions = session.feed(DigitsReceived("1"))
    assert texts(actions) == ["Thanks.", "Handling?"]
    assert all(a.barge_in_digits == "123" for a in actions if isinstance(a, Play))


# --- hanging up


HANG_UP_AFTER = [
    [],
    [DigitsReceived("1")],
    press("13"),
    [*press("13"), NoInput()],
    press("1312"),
    press("13123"),
]


@pytest.mark.parametrize("before", HANG_UP_AFTER, ids=lambda events: f"after-{len(events)}")
def test_hanging_up_at_any_step_gives_a_partial_result(call, before):
    c = call("survey-110.en-US")
    c.feed(*before)
    assert c.feed(HungUp()) == []
    result = c.session.result()
    assert c.session.finished
    assert (result.hung_up, result.completed) == (True, False)
    assert len(result.answers) == len(before) - sum(isinstance(e, NoInput) for e in before)


def test_hanging_up_during_the_complaint_keeps_the_earlier_answers(call):
    c, _ = _unsatisfied_survey(call)
    c.feed(HungUp())
    result = c.session.result()
    assert result.escalate and result.hung_up and not result.completed


def test_hanging_up_before_the_start_finishes_with_nothing():
    session = Session(builtin_script("survey-110.en-US"), _en_vars())
    assert session.feed(HungUp()) == []
    assert session.finished and session.start() == []
    assert session.result().outcome == Satisfaction.unclear


@pytest.mark.parametrize(
    "event",
    [
        DigitsReceived("1"),
        NoInput(),
        SpeechRecognized("good", 1.0),
        RecordingFinished("x", 3.0),
        HungUp(),
    ],
)
def test_after_the_end_every_event_gets_nothing(call, event):
    c = call("survey-110.en-US")
    c.feed(DigitsReceived("9"))
    before = c.session.result()
    assert c.feed(event) == []
    assert c.session.result() == before


# --- the overall outcome


@pytest.mark.parametrize(
    ("presses", "outcome"),
    [
        ("13111", Satisfaction.satisfied),  # the overall answer decides
        ("1121", Satisfaction.basically_satisfied),  # no overall: the worst
        ("123", Satisfaction.unsatisfied),
        ("1", Satisfaction.unclear),  # nothing graded yet
    ],
)
def test_outcome_is_the_overall_answer_else_the_worst(call, presses, outcome):
    c = call("survey-110.en-US")
    c.feed(*press(presses))
    assert c.session.result().outcome == outcome


def test_escalation_follows_any_unsatisfied_answer_even_when_overall_is_satisfied(call):
    c = call("survey-110.en-US")
    c.feed(*press("13111"))
    assert c.session.result().escalate


def test_every_batch_ends_with_one_input_or_the_end_of_the_call(call):
    c = call("survey-110.zh-CN")
    c.feed(DigitsReceived("1"), NoInput(), DigitsReceived("3"), SpeechRecognized("满意", 0.3))
    c.feed(*press("211"), RecordingFinished("/r.wav", 5.0))
    for batch in c.batches:
        assert waiting_for(batch) or ends_call(batch)
        assert sum(isinstance(a, Collect | Record | Hangup | Transfer) for a in batch) == 1


def _en_vars() -> dict[str, str]:
    return {
        "incident_date": "November 22",
        "incident_time": "2:30 PM",
        "source": "110",
        "unit_name": "Central",
    }
