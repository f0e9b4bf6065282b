"""Grammar fitting and transcript building: the pure part of the Vosk adapter."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.speech.recognizer import SpeechError, Word
from huifang.speech.vosk import UNK, build_transcript, fit_grammar

VOCABULARY = frozenset({"满意", "不", "非常", "基本", "一般", "[unk]", "yes", "no"})


def word(text: str, confidence: float = 0.9) -> Word:
    return Word(text, 0.0, 0.5, confidence)


def test_chinese_phrase_is_split_into_vocabulary_words() -> None:
    grammar = fit_grammar(["非常满意", "不满意"], VOCABULARY)
    assert grammar.phrases == ("非常 满意", "不 满意")
    assert grammar.original["不 满意"] == "不满意"


def test_phrase_with_a_word_the_model_lacks_is_dropped() -> None:
    grammar = fit_grammar(["满意", "凑合"], VOCABULARY)
    assert grammar.phrases == ("满意",)
    assert grammar.dropped == ("凑合",)


def test_grammar_with_no_sayable_phrase_is_refused() -> None:
    with pytest.raises(SpeechError, match="vocabulary"):
        fit_grammar(["凑合", "马马虎虎"], VOCABULARY)


def test_unk_is_offered_only_when_the_model_has_it() -> None:
    assert UNK in fit_grammar(["满意"], VOCABULARY).as_json()
    assert UNK not in fit_grammar(["满意"], VOCABULARY - {UNK}).as_json()


@given(st.lists(st.sampled_from(["满意", "不", "非常", "基本", "一般"]), min_size=1, max_size=4))
def test_any_concatenation_of_vocabulary_words_can_be_fitted(parts: list[str]) -> None:
    grammar = fit_grammar(["".join(parts)], VOCABULARY)
    assert "".join(grammar.phrases[0].split()) == "".join(parts)


def test_grammar_result_is_reported_as_the_callers_phrase() -> None:
    grammar = fit_grammar(["不满意"], VOCABULARY)
    transcript = build_transcript([word("不"), word("满意")], grammar)
    assert transcript.text == "不满意"
    assert transcript.confidence == pytest.approx(0.9)


def test_grammar_result_containing_unk_is_no_match() -> None:
    grammar = fit_grammar(["满意"], VOCABULARY)
    assert build_transcript([word(UNK), word("满意")], grammar).text == ""


def test_forced_match_with_low_confidence_is_no_match_without_unk() -> None:
    grammar = fit_grammar(["满意"], VOCABULARY - {UNK})
    assert build_transcript([word("满意", 0.3)], grammar).text == ""
    assert build_transcript([word("满意", 0.95)], grammar).text == "满意"


def test_sequence_of_several_phrases_is_no_match() -> None:
    grammar = fit_grammar(["yes", "no"], VOCABULARY)
    assert build_transcript([word("yes"), word("no")], grammar).text == ""


def test_free_transcript_leaves_out_unknown_words() -> None:
    transcript = build_transcript([word("yes", 0.8), word(UNK, 0.1), word("no", 0.6)], None)
    assert transcript.text == "yes no"
    assert transcript.confidence == pytest.approx(0.7)
