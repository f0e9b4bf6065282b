"""The reply reader: rules for menu digits, the learned model for free text, and abstention
when it is not sure (a person reads the reply instead of a guess)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from huifang.domain.enums import Satisfaction
from huifang.speech.features import grievance_cues
from huifang.speech.model import (
    Policy,
    artefact_bytes,
    deployed_model_path,
    packaged_model_path,
)
from huifang.speech.reader import Reader, ReviewReason, doubt, load_reader

#: the kinds of complaint the issue found read as satisfied (its own examples)
COMPLAINTS = [
    ("真“快”啊，俩小时才来人", "zh-CN"),
    ("呵呵，满意死了，至今没人理", "zh-CN"),
    ("oh wonderful, four hours to show up", "en-US"),
    ("满意？钱包到现在都没找到", "zh-CN"),
    ("换你你会满意吗", "zh-CN"),
    ("没法说满意", "zh-CN"),
    ("算不上好", "zh-CN"),
    ("满意不起来", "zh-CN"),
    ("还凑合吧，就是事情一点没办成", "zh-CN"),
    ("they were friendly, but nothing changed", "en-US"),
    ("说了好几次了，还是没人来处理", "zh-CN"),
    ("the car is still blocking my gate", "en-US"),
    ("no, not happy, it took ages", "en-US"),
]
#: replies that answer nothing: asked again, not sent to review
NOT_ANSWERS = [("你们是哪里？", "zh-CN"), ("好的", "zh-CN"), ("wrong number", "en-US")]


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Reader:
    return load_reader(tmp_path_factory.mktemp("no-models"))


@pytest.mark.parametrize(("text", "language"), COMPLAINTS, ids=[t for t, _ in COMPLAINTS])
def test_a_complaint_of_the_kinds_the_lexicon_missed_reaches_a_person(
    reader: Reader, text: str, language: str
) -> None:
    reading = reader.read(text, language)
    assert reading.review or reading.label is Satisfaction.unsatisfied


@pytest.mark.parametrize(("text", "language"), NOT_ANSWERS, ids=[t for t, _ in NOT_ANSWERS])
def test_a_reply_that_answers_nothing_is_read_as_unclear_with_confidence(
    reader: Reader, text: str, language: str
) -> None:
    reading = reader.read(text, language)
    assert (reading.label, reading.review) == (Satisfaction.unclear, False)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("1", Satisfaction.satisfied),
        ("回复2", Satisfaction.basically_satisfied),
        ("３", Satisfaction.unsatisfied),
    ],
)
def test_a_reply_digit_is_read_by_the_menu_rule(
    reader: Reader, text: str, label: Satisfaction
) -> None:
    reading = reader.read(text, "zh-CN")
    assert (reading.label, reading.menu, reading.review) == (label, True, False)


def test_a_reply_in_a_script_the_reader_has_no_lexicon_for_goes_to_review(reader: Reader) -> None:
    reading = reader.read("ساقچىلار كېچىكىپ كەلدى", "zh-CN")  # Uyghur: "the police came late"
    assert (reading.review, reading.reason) == (True, ReviewReason.unknown_language)


def test_every_reading_names_the_model_version_it_came_from(reader: Reader) -> None:
    digest = hashlib.sha256(packaged_model_path().read_bytes()).hexdigest()
    assert reader.read("满意", "zh-CN").version == digest[:12] == reader.version


def test_a_model_in_the_models_folder_overrides_the_packaged_one(tmp_path: Path) -> None:
    artefact = json.loads(gzip.decompress(packaged_model_path().read_bytes()))
    artefact["policy"]["confidence"] = 0.5
    deployed = deployed_model_path(tmp_path)
    deployed.parent.mkdir(parents=True)
    deployed.write_bytes(artefact_bytes(artefact))
    reader = load_reader(tmp_path)
    assert reader.model.policy.confidence == 0.5
    assert reader.version == hashlib.sha256(deployed.read_bytes()).hexdigest()[:12]


def test_a_broken_model_in_the_models_folder_is_refused_with_its_path(tmp_path: Path) -> None:
    deployed = deployed_model_path(tmp_path)
    deployed.parent.mkdir(parents=True)
    deployed.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=f"{deployed}: not a gzipped JSON reply model"):
        load_reader(tmp_path)


POLICY = Policy(
    confidence=0.8, complaint_risk=0.05, marked_confidence=0.95, complaint_confidence=0.7
)


def test_a_reading_below_the_confidence_threshold_abstains() -> None:
    assert doubt(POLICY, Satisfaction.unclear, 0.75, 0.0, ()) == ReviewReason.low_confidence
    assert doubt(POLICY, Satisfaction.unsatisfied, 0.6, 0.6, ()) == ReviewReason.low_confidence


def test_a_reading_other_than_unsatisfied_abstains_on_a_chance_of_a_complaint() -> None:
    reason = doubt(POLICY, Satisfaction.satisfied, 0.94, 0.06, ())
    assert reason == ReviewReason.complaint_risk


def test_a_satisfied_reading_abstains_when_the_rules_found_a_grievance() -> None:
    reason = doubt(POLICY, Satisfaction.satisfied, 0.99, 0.0, ("role:+reason", "role:-reason"))
    assert reason == ReviewReason.complaint_risk


def test_a_reading_of_a_question_or_many_clauses_needs_the_higher_confidence() -> None:
    for mark in ("mark:question", "mark:clauses=3+", "mark:mixed"):
        assert doubt(POLICY, Satisfaction.satisfied, 0.9, 0.0, (mark,)) == ReviewReason.marked
        assert doubt(POLICY, Satisfaction.satisfied, 0.97, 0.0, (mark,)) == ""


def test_an_unsatisfied_reading_needs_no_more_than_the_complaint_threshold() -> None:
    """It reaches a person either way: its threshold guards escalations' accuracy only."""
    assert doubt(POLICY, Satisfaction.unsatisfied, 0.75, 0.75, ("mark:quote",)) == ""


@pytest.mark.parametrize(
    "mark", ["mark:grievance", "mark:contrast", "mark:quote", "mark:laughter", "mark:eye_roll"]
)
def test_a_closing_reading_beside_words_of_a_grievance_or_sarcasm_abstains(mark: str) -> None:
    for label in (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.opt_out):
        assert doubt(POLICY, label, 0.99, 0.0, (mark,)) == ReviewReason.complaint_risk


def test_words_of_a_grievance_leave_a_not_an_answer_reading_to_be_asked_again() -> None:
    assert doubt(POLICY, Satisfaction.unclear, 0.99, 0.0, ("mark:grievance",)) == ""


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("the car is still blocking my gate", "en-US"),
        ("great job, nobody came", "en-US"),
        ("Polite, yes. Helpful, no.", "en-US"),
        ("they were friendly, but it is not fixed", "en-US"),
        ("说了好几次了，还是没人来处理", "zh-CN"),
        ("呵呵，满意死了，至今没人理", "zh-CN"),
        ("还凑合吧，就是事情一点没办成", "zh-CN"),
        ("挺 好 的 就是 车 没 找到", "zh-CN"),
        ("a bit of a wait and nobody came", "en-US"),
    ],
)
def test_words_of_a_grievance_are_found_behind_praise(text: str, language: str) -> None:
    assert grievance_cues(text.lower(), language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("no complaints at all", "en-US"),
        ("please do not text me again", "en-US"),
        ("great, fixed the next day", "en-US"),
        ("没什么不满意的", "zh-CN"),
        ("挺好的，就是来得稍微慢了点", "zh-CN"),
        ("还可以，没毛病", "zh-CN"),
        ("fine, bit of a wait", "en-US"),
        ("基本满意，就是稍微等了一会儿", "zh-CN"),
    ],
)
def test_praise_and_plain_requests_hold_no_words_of_a_grievance(text: str, language: str) -> None:
    assert grievance_cues(text.lower(), language) == []
