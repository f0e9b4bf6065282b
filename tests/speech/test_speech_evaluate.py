"""The reader's figures on a labelled corpus, and `huifang speech evaluate` printing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huifang.cli import app
from huifang.domain.enums import Satisfaction
from huifang.speech.evaluate import REVIEW, Scored, evaluate, render_text

runner = CliRunner()
SAT, BASIC, UNSAT, OPT, UNCLEAR = (
    Satisfaction.satisfied,
    Satisfaction.basically_satisfied,
    Satisfaction.unsatisfied,
    Satisfaction.opt_out,
    Satisfaction.unclear,
)
#: ten rows: two of four complaints lost (one read as satisfied), one reviewed, one digit
ROWS = [
    Scored(SAT, "satisfied", False),
    Scored(SAT, "satisfied", True),
    Scored(BASIC, "basically_satisfied", False),
    Scored(UNSAT, "unsatisfied", False),
    Scored(UNSAT, "satisfied", False),
    Scored(UNSAT, "opt_out", False),
    Scored(UNSAT, REVIEW, False),
    Scored(OPT, "opt_out", False),
    Scored(UNCLEAR, "unclear", False),
    Scored(UNCLEAR, "unsatisfied", False),
]


def test_lost_complaints_are_complaints_read_as_satisfied_basically_satisfied_or_opt_out() -> None:
    figures = evaluate(ROWS)
    assert (figures.lost_complaints, figures.unsatisfied) == (2, 4)
    assert figures.lost_share == pytest.approx(0.5)
    assert figures.unsatisfied_as_satisfied == 1


def test_a_review_is_a_miss_for_accuracy_and_left_out_of_labelled_accuracy() -> None:
    figures = evaluate(ROWS)
    assert figures.accuracy == pytest.approx(6 / 10)
    assert figures.labelled_accuracy == pytest.approx(6 / 9)


def test_the_review_share_leaves_reply_digits_out() -> None:
    figures = evaluate(ROWS)
    assert (figures.reviewed, figures.free_text) == (1, 9)
    assert figures.review_share == pytest.approx(1 / 9)


def test_precision_and_recall_per_label() -> None:
    figures = evaluate(ROWS)
    assert figures.precision(UNSAT) == pytest.approx(1 / 2)  # one of two unsatisfied readings
    assert figures.recall(UNSAT) == pytest.approx(1 / 4)
    assert figures.precision(SAT) == pytest.approx(2 / 3)


def test_the_confusion_matrix_has_a_review_column() -> None:
    confusion = evaluate(ROWS).as_dict()["confusion"]
    assert confusion["unsatisfied"] == {
        "satisfied": 1, "basically_satisfied": 0, "unsatisfied": 1, "opt_out": 1,
        "unclear": 0, REVIEW: 1,
    }  # fmt: skip


def test_the_text_report_names_every_figure() -> None:
    text = render_text(evaluate(ROWS))
    for words in ("accuracy", "labelled itself", "sent to review", "lost complaints", "confusion"):
        assert words in text
    assert "2 of 4 unsatisfied = 50.0 %" in text


def corpus_file(folder: Path, name: str = "replies.zh-CN.tsv") -> Path:
    path = folder / name
    path.write_text(
        "text\tlabel\tchannel\tkind\n"
        "非常满意\tsatisfied\tsms\tplain\n"
        "3\tunsatisfied\tsms\tdigit\n"
        "不 满意 来 得 太 慢 了\tunsatisfied\tspeech\tplain\n"
        "退订\topt_out\tsms\topt_out\n",
        encoding="utf-8",
    )
    return path


def test_evaluate_prints_the_figures_of_a_corpus_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["speech", "evaluate", str(corpus_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "rows                      4  (3 free text)" in result.stdout
    assert "lost complaints           0 of 2 unsatisfied" in result.stdout


def test_evaluate_json_is_one_object_with_the_model_version(tmp_path: Path) -> None:
    result = runner.invoke(app, ["speech", "evaluate", "--json", str(corpus_file(tmp_path))])
    figures = json.loads(result.stdout)
    assert figures["rows"] == 4 and len(figures["model"]) == 12
    assert figures["lost_complaints"] == 0 and figures["unsatisfied_as_satisfied"] == 0


def test_evaluate_refuses_a_bad_row_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.zh-CN.tsv"
    path.write_text("text\tlabel\tchannel\tkind\n满意\thappy\tsms\tplain\n", encoding="utf-8")
    result = runner.invoke(app, ["speech", "evaluate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: label 'happy' is not one of" in result.output


def test_evaluate_unseen_leaves_out_replies_the_corpus_teaches(tmp_path: Path) -> None:
    path = tmp_path / "replies.zh-CN.tsv"
    path.write_text(
        "text\tlabel\tchannel\tkind\n"
        "满意\tsatisfied\tsms\tplain\n"  # a train row, case and spacing aside
        "楼道里的自行车被 偷了第七回，派出所的人一次也没来过\tunsatisfied\tsms\tplain\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["speech", "evaluate", "--unseen", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 1
