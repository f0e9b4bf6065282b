"""Prompt audio: espeak-ng and sox produce 8 kHz mono 16-bit WAV, cached by content."""

from __future__ import annotations

import shutil
import struct
import wave
from pathlib import Path

import pytest

from huifang.ivr import prompts
from huifang.ivr.prompts import (
    PromptRenderError,
    convert_audio,
    prompt_path,
    render_script,
    render_text,
)
from huifang.ivr.script import builtin_script, parse_script_mapping
from huifang.ivr.template import render_template

needs_tools = pytest.mark.speech


@pytest.fixture
def tools() -> None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip(
            "espeak-ng and sox are needed to render prompts (apt-get install espeak-ng sox)"
        )


def phone_format(path: Path) -> tuple[int, int, int, bool]:
    with wave.open(str(path)) as audio:
        return (
            audio.getframerate(),
            audio.getnchannels(),
            audio.getsampwidth(),
            audio.getnframes() > 0,
        )


def write_wav(path: Path, rate: int, channels: int, seconds: float) -> Path:
    frames = int(rate * seconds)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(channels)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        sample = struct.pack("<h", 1000) * channels
        audio.writeframes(sample * frames)
    return path


@needs_tools
@pytest.mark.parametrize(
    ("text", "language"), [("您好，这里是回访中心。", "zh-CN"), ("Hello.", "en-US")]
)
def test_text_is_rendered_as_8khz_mono_16_bit_wav(tools, tmp_path, text, language):
    path = render_text(text, language, tmp_path)
    assert phone_format(path) == (8000, 1, 2, True)


@needs_tools
def test_a_cached_prompt_is_returned_without_running_anything(tools, tmp_path, monkeypatch):
    first = render_text("Hello again.", "en-US", tmp_path)

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached prompt must not be rendered again")

    monkeypatch.setattr(prompts.subprocess, "run", no_subprocess)
    assert render_text("Hello again.", "en-US", tmp_path) == first


@needs_tools
def test_rendering_leaves_only_the_finished_file(tools, tmp_path):
    path = render_text("Tidy.", "en-US", tmp_path)
    assert list(tmp_path.iterdir()) == [path]


@needs_tools
def test_text_that_looks_like_an_option_is_spoken_not_obeyed(tools, tmp_path):
    path = render_text("--help -w /tmp/evil.wav", "en-US", tmp_path)
    assert phone_format(path)[3]


def test_the_cache_name_depends_on_voice_and_text(tmp_path):
    names = {
        prompt_path("满意", "zh-CN", tmp_path),
        prompt_path("满意", "en-US", tmp_path),
        prompt_path("满意。", "zh-CN", tmp_path),
    }
    assert len(names) == 3
    assert prompt_path("满意", "zh-CN", tmp_path) == prompt_path("满意", "zh-CN", tmp_path)


def test_a_language_without_a_voice_is_refused(tmp_path):
    with pytest.raises(PromptRenderError, match="no voice for language 'fr-FR'"):
        render_text("Bonjour", "fr-FR", tmp_path)


def test_a_missing_tool_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PromptRenderError, match="espeak-ng is not installed"):
        render_text("Hello.", "en-US", tmp_path / "cache")


@needs_tools
def test_an_upload_is_converted_to_the_phone_format(tools, tmp_path):
    upload = write_wav(tmp_path / "upload.wav", rate=44100, channels=2, seconds=0.5)
    path = convert_audio(upload, tmp_path / "cache")
    assert phone_format(path) == (8000, 1, 2, True)
    assert convert_audio(upload, tmp_path / "cache") == path


def test_an_unreadable_upload_is_refused(tmp_path):
    with pytest.raises(PromptRenderError, match="cannot read"):
        convert_audio(tmp_path / "missing.wav", tmp_path / "cache")


@needs_tools
def test_an_upload_that_is_not_audio_is_refused(tools, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(PromptRenderError, match="sox failed"):
        convert_audio(junk, tmp_path / "cache")


@needs_tools
def test_a_script_renders_every_prompt_by_key(tools, tmp_path):
    script = builtin_script("second-callback.zh-CN")
    rendered = render_script(script, tmp_path)
    assert list(rendered) == [key for key, _ in script.prompts()]
    assert all(phone_format(path)[0] == 8000 for path in rendered.values())


@needs_tools
def test_prompts_with_variables_are_rendered_with_the_values_given(tools, tmp_path):
    script = builtin_script("second-callback.en-US")
    values = {"unit_name": "North Station", "incident_date": "May 1"}
    preview = render_script(script, tmp_path)
    real = render_script(script, tmp_path, values)
    confirm = "questions[0].prompt"
    assert real[confirm] != preview[confirm]
    assert real["greeting"] == preview["greeting"]
    text = render_template(script.questions[0].prompt.text_for("en-US") or "", values)
    assert real[confirm] == prompt_path(text, "en-US", tmp_path)


@needs_tools
def test_an_uploaded_prompt_is_read_beside_the_script(tools, tmp_path, mini_doc):
    write_wav(tmp_path / "closing.wav", rate=16000, channels=1, seconds=0.3)
    mini_doc["closing"] = {"text": "Bye.", "audio": "closing.wav"}
    rendered = render_script(
        parse_script_mapping(mini_doc), tmp_path / "cache", audio_root=tmp_path
    )
    assert rendered["closing"].name.startswith("audio-")
    assert phone_format(rendered["closing"]) == (8000, 1, 2, True)
