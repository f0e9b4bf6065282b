"""The satisfaction classifier on a labelled set of realistic replies, and its invariants."""

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.domain.enums import ComplaintCategory, Satisfaction
from huifang.speech.classify import ComplaintTag, classify, tag_complaint

DATA = Path(__file__).parent / "data"
SWAPS = {Satisfaction.satisfied, Satisfaction.unsatisfied}


def labelled(language: str) -> list[tuple[str, Satisfaction]]:
    with (DATA / f"replies-{language}.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["text", "label"]
    return [(text, Satisfaction(label)) for text, label in rows[1:]]


CHINESE = labelled("zh-CN")
ENGLISH = labelled("en-US")


def test_the_labelled_sets_are_large_and_cover_every_label() -> None:
    assert len(CHINESE) >= 300 and len(ENGLISH) >= 100
    assert {label for _, label in CHINESE} == set(Satisfaction)
    assert {label for _, label in ENGLISH} == set(Satisfaction)


@pytest.mark.parametrize(("text", "label"), CHINESE, ids=[t for t, _ in CHINESE])
def test_chinese_reply_is_labelled_as_a_person_would(text: str, label: Satisfaction) -> None:
    assert classify(text, "zh-CN").label is label


@pytest.mark.parametrize(("text", "label"), ENGLISH, ids=[t for t, _ in ENGLISH])
def test_english_reply_is_labelled_as_a_person_would(text: str, label: Satisfaction) -> None:
    assert classify(text, "en-US").label is label


# Vosk writes Chinese words, never Latin letters or digits, with spaces between them
CHINESE_WORDS_ONLY = [
    (t, label) for t, label in CHINESE if not any(c.isascii() and c.isalnum() for c in t)
]


@given(st.sampled_from(CHINESE_WORDS_ONLY))
def test_vosk_spacing_between_characters_changes_nothing(row: tuple[str, Satisfaction]) -> None:
    text, label = row
    assert classify(" ".join(text), "zh-CN").label is label


@pytest.mark.parametrize(("ascii_digit", "wide_digit"), [("1", "１"), ("2", "２"), ("3", "３")])
def test_full_width_digits_are_menu_choices_like_ascii_ones(
    ascii_digit: str, wide_digit: str
) -> None:
    assert classify(wide_digit).label is classify(ascii_digit).label


@pytest.mark.parametrize("text", ["等了2个小时才来", "3个小时都没人来", "waited 2 hours"])
def test_a_number_with_a_unit_is_not_a_menu_choice(text: str) -> None:
    assert classify(text).label is Satisfaction.unsatisfied


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("不满意", Satisfaction.unsatisfied),
        ("没什么不满意的", Satisfaction.satisfied),
        ("不差", Satisfaction.basically_satisfied),
        ("不是很满意", Satisfaction.unsatisfied),
    ],
)
def test_negation_flips_what_follows_it(text: str, label: Satisfaction) -> None:
    assert classify(text).label is label


def test_a_complaint_beside_an_opt_out_still_reaches_a_person() -> None:
    assert classify("太差了，别再发了").label is Satisfaction.unsatisfied
    assert classify("别再发了").label is Satisfaction.opt_out


def test_a_chinese_answer_is_read_as_chinese_whatever_language_was_asked() -> None:
    assert classify("不满意", "en-US").label is Satisfaction.unsatisfied


def test_a_latin_answer_to_a_chinese_survey_is_read_as_english() -> None:
    assert classify("very good", "zh-CN").label is Satisfaction.satisfied
    assert classify("TD", "zh-CN").label is Satisfaction.opt_out


def test_evidence_is_the_matched_span() -> None:
    result = classify("总体还行，就是来得有点慢")
    assert result.label is Satisfaction.basically_satisfied
    assert result.evidence.startswith("总体还行")


def test_unclear_answers_carry_no_evidence_unless_an_acknowledgement_matched() -> None:
    assert classify("？").evidence == ""
    assert classify("好的").evidence == "好的"


def test_an_unsupported_language_is_refused_when_the_text_does_not_tell() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        classify("1", "fr-FR")


@given(st.text(max_size=60), st.sampled_from(["zh-CN", "en-US"]))
def test_any_text_gets_a_label_and_a_confidence_between_0_and_1(text: str, language: str) -> None:
    result = classify(text, language)
    assert result.label in Satisfaction
    assert 0.0 <= result.confidence <= 1.0


@given(st.sampled_from(CHINESE + ENGLISH))
def test_no_labelled_reply_is_swapped_between_satisfied_and_unsatisfied(
    row: tuple[str, Satisfaction],
) -> None:
    text, label = row
    got = classify(text, "zh-CN" if row in CHINESE else "en-US").label
    assert not (label in SWAPS and got in SWAPS and got is not label)


# --- complaint tags


def categories(text: str, language: str = "zh-CN") -> set[ComplaintCategory]:
    return {tag.category for tag in tag_complaint(text, language)}


def test_rude_officer_is_an_attitude_complaint() -> None:
    assert tag_complaint("民警态度恶劣") == [
        ComplaintTag(ComplaintCategory.attitude, "民警态度恶劣")
    ]


def test_topic_word_lends_its_category_to_a_plain_judgement() -> None:
    assert categories("态度非常差") == {ComplaintCategory.attitude}


def test_late_arrival_is_an_arrival_time_complaint() -> None:
    assert categories("等了两个小时才来") == {ComplaintCategory.arrival_time}
    assert categories("they never came", "en-US") == {ComplaintCategory.arrival_time}


def test_unresolved_case_is_a_handling_complaint() -> None:
    assert categories("问题到现在都没解决") == {ComplaintCategory.handling}
    assert categories("nothing was done", "en-US") == {ComplaintCategory.handling}


def test_several_complaints_get_several_tags_with_their_phrases() -> None:
    tags = tag_complaint("来得太慢，态度也很差，问题还没解决")
    assert {tag.category for tag in tags} == {
        ComplaintCategory.arrival_time,
        ComplaintCategory.attitude,
        ComplaintCategory.handling,
    }
    assert all(tag.phrase for tag in tags)


def test_a_complaint_naming_nothing_specific_is_tagged_other() -> None:
    assert tag_complaint("不满意") == [ComplaintTag(ComplaintCategory.other, "不满意")]


def test_a_satisfied_answer_has_no_complaint_tags() -> None:
    assert tag_complaint("非常满意，民警来得很快") == []


def test_a_mild_complaint_is_still_tagged() -> None:
    assert categories("总体还行，就是来得有点慢") == {ComplaintCategory.arrival_time}


@pytest.mark.parametrize(("traditional", "simplified"), [("不滿意", "不满意"), ("還行", "还行")])
def test_traditional_characters_read_like_simplified_ones(
    traditional: str, simplified: str
) -> None:
    assert classify(traditional) == classify(simplified)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("请问我的东西找到了吗", Satisfaction.unclear),
        ("Did you find my bike?", Satisfaction.unclear),
        ("为什么没人管？", Satisfaction.unsatisfied),
        ("Why did nobody come?", Satisfaction.unsatisfied),
    ],
)
def test_a_question_asks_about_a_judgement_unless_it_is_rhetorical(
    text: str, label: Satisfaction
) -> None:
    assert classify(text).label is label


def test_an_aspect_judgement_is_a_reason_and_the_verdict_decides() -> None:
    assert classify("总的来说不满意，来得太慢，态度也一般").label is Satisfaction.unsatisfied
    assert classify("态度不错，速度一般").label is Satisfaction.basically_satisfied


def test_evidence_of_a_long_transcript_stays_short() -> None:
    result = classify("来得太慢了，态度很差，问题没解决。" * 200)
    assert result.label is Satisfaction.unsatisfied
    assert result.evidence.count("…") <= 2


LEXICONS = Path(__file__).resolve().parents[2] / "huifang" / "speech" / "lexicons"
ALONE = {
    "satisfied": Satisfaction.satisfied,
    "+reason": Satisfaction.satisfied,
    "basic": Satisfaction.basically_satisfied,
    "unsatisfied": Satisfaction.unsatisfied,
    "-reason": Satisfaction.unsatisfied,
    "optout": Satisfaction.opt_out,
}


def lexicon_phrases(language: str) -> list[tuple[str, str, Satisfaction]]:
    rows = [
        line.split("\t")
        for line in (LEXICONS / f"{language}.tsv").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    whole = {row[0] for row in rows if row[1].startswith("=")}
    return [
        (language, row[0], ALONE[row[1]])
        for row in rows
        if row[1] in ALONE and not row[0].startswith("re:") and row[0] not in whole
    ]


@pytest.mark.parametrize(
    ("language", "phrase", "label"), lexicon_phrases("zh-CN") + lexicon_phrases("en-US")
)
def test_every_lexicon_phrase_alone_gets_its_own_label(
    language: str, phrase: str, label: Satisfaction
) -> None:
    # catches phrases shadowed by a longer entry, a pattern or a modifier
    assert classify(phrase, language).label is label


@pytest.mark.parametrize("text", ["很满意才怪", "满意也谈不上", "非常满意的才怪"])
def test_a_negator_ending_the_answer_takes_back_what_came_before(text: str) -> None:
    assert classify(text).label is Satisfaction.unsatisfied


def test_a_negator_inside_a_phrase_takes_nothing_back() -> None:
    assert classify("民警不管不顾就走了").label is Satisfaction.unsatisfied
