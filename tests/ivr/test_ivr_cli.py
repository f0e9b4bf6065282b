"""`huifang script check | render | try`, driven through Typer's CliRunner."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huifang.cli import app
from huifang.ivr.script import builtin_scripts_dir, validate_script_text

runner = CliRunner()
BUILTINS = sorted(builtin_scripts_dir().glob("*.yaml"))
BAD_SCRIPT = """\
name: bad
language: en-US
defaults:
  no_input_prompt: Sorry?
  invalid_prompt: No.
questions:
  - id: overall
    dimension: overall
    prompt: How was {unit}?
    choices:
      - {digit: 1, outcome: satisfied}
      - {digit: 12, outcome: unsatisfied}
closing: Bye.
"""


@pytest.fixture
def bad_script(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SCRIPT, encoding="utf-8")
    return path


def run_try(script: Path | str, typed: str, *options: str) -> tuple[int, str, dict]:
    path = builtin_scripts_dir() / f"{script}.yaml" if isinstance(script, str) else script
    outcome = runner.invoke(app, ["script", "try", str(path), *options], input=typed)
    transcript, _, result = outcome.output.partition("\n{")
    return outcome.exit_code, transcript, json.loads("{" + result)


def test_check_says_ok_for_every_builtin_script():
    outcome = runner.invoke(app, ["script", "check", *map(str, BUILTINS)])
    assert outcome.exit_code == 0
    assert "OK survey-110.zh-CN (zh-CN, 7 questions)" in outcome.output.splitlines()


def test_check_prints_every_error_with_its_path_and_line_and_fails(bad_script):
    outcome = runner.invoke(app, ["script", "check", str(bad_script)])
    assert outcome.exit_code == 1
    lines = outcome.output.splitlines()
    assert f"{bad_script}:9: questions[0].prompt: unknown variable {{unit}}; known: " in lines[0]
    assert lines[1] == f"{bad_script}:12: questions[0].choices[1].digit: '12' is not one key"


def test_check_reports_the_same_errors_as_the_api_function(bad_script):
    outcome = runner.invoke(app, ["script", "check", str(bad_script)])
    expected = [str(error) for error in validate_script_text(BAD_SCRIPT)]
    assert [line.split(": ", 1)[1] for line in outcome.output.splitlines()] == expected


def test_check_fails_when_any_of_several_files_is_invalid(bad_script):
    outcome = runner.invoke(app, ["script", "check", str(BUILTINS[0]), str(bad_script)])
    assert outcome.exit_code == 1
    assert outcome.output.startswith("OK ")


def test_check_reports_a_yaml_syntax_error_with_its_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nquestions: [\n", encoding="utf-8")
    outcome = runner.invoke(app, ["script", "check", str(path)])
    assert outcome.exit_code == 1
    assert outcome.output.startswith(f"{path}:3: YAML syntax: ")


def test_check_of_a_missing_file_fails(tmp_path):
    assert runner.invoke(app, ["script", "check", str(tmp_path / "nope.yaml")]).exit_code == 2


@pytest.mark.parametrize("name", [p.stem for p in BUILTINS])
def test_try_runs_every_builtin_script_to_the_end(name):
    code, transcript, result = run_try(name, "1\n1\n1\n1\n1\n")
    assert code == 0
    assert transcript.rstrip().endswith("HANGUP")
    assert result["completed"] and not result["escalate"]


def test_try_takes_speech_keys_silence_and_a_typed_complaint():
    typed = "1\nsay:not satisfied\n\n2\nsay@0.3:satisfied\n1\n1\nthe officer never came back\n"
    code, transcript, result = run_try("survey-110.en-US", typed)
    assert code == 0
    assert "SAY     Sorry, we did not hear your choice." in transcript
    assert "SAY     Sorry, we did not catch that. Please use the keypad." in transcript
    assert "RECORD  up to 60 s, stops after 4 s of silence" in transcript
    modes = [(a["dimension"], a["mode"], a["outcome"]) for a in result["answers"]]
    assert modes[1] == ("attitude", "speech", "unsatisfied")
    assert modes[-1] == ("reason", "recording", None)
    assert result["answers"][-1]["transcript"] == "the officer never came back"
    assert result["escalate"] and result["completed"]


def test_try_hangup_gives_the_partial_result():
    code, transcript, result = run_try("survey-110.zh-CN", "1\n3\nhangup\n")
    assert code == 0
    assert (result["hung_up"], result["completed"], result["escalate"]) == (True, False, True)


def test_try_treats_the_end_of_input_as_a_hang_up():
    code, _, result = run_try("survey-110.en-US", "1\n")
    assert code == 0 and result["hung_up"]


def test_try_uses_the_given_variables():
    _, transcript, _ = run_try(
        "survey-110.zh-CN", "9\n", "--var", "incident_date=1月2日", "--var", "source=110"
    )
    assert "您于1月2日" in transcript


def test_try_refuses_an_unknown_variable():
    outcome = runner.invoke(
        app, ["script", "try", str(BUILTINS[0]), "--var", "who=me"], input="9\n"
    )
    assert outcome.exit_code == 2


def test_try_of_an_invalid_script_prints_its_errors(bad_script):
    outcome = runner.invoke(app, ["script", "try", str(bad_script)], input="1\n")
    assert outcome.exit_code == 1
    assert "questions[0].choices[1].digit: '12' is not one key" in outcome.output


@pytest.mark.speech
def test_render_writes_every_prompt_as_8khz_wav(tmp_path):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to render prompts")
    outcome = runner.invoke(
        app,
        [
            "script",
            "render",
            str(builtin_scripts_dir() / "second-callback.en-US.yaml"),
            "--out",
            str(tmp_path),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    rows = [line.split("\t") for line in outcome.output.splitlines() if "\t" in line]
    assert [key for key, _ in rows][0] == "greeting"
    assert rows[-1][0] == "closing"
    for _, path in rows:
        with wave.open(path) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000,
                1,
                2,
            )
