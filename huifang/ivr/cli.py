"""`huifang script …`: check, render and try call scripts without a phone.

`try` is a terminal provider: it prints each action the interpreter returns and reads the
citizen's side from stdin, one line per input — keys (`1`), speech (`say:很满意`, or
`say@0.4:…` to give the recognizer's confidence), `hangup`, or an empty line for silence.
It reads plain lines, so it works the same with piped input (tests, demos) as typed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from huifang.ivr.actions import Action
    from huifang.ivr.events import Event
    from huifang.ivr.script import Script, ScriptError

app = typer.Typer(
    help="Call scripts: check, render prompts, try in the terminal.", no_args_is_help=True
)

VarOption = Annotated[
    list[str] | None,
    typer.Option("--var", help="a template variable, name=value (repeatable); samples otherwise"),
]


@app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="script YAML files")]) -> None:
    """Validate scripts; print every problem with its node path, exit 1 if any."""
    from huifang.ivr.script import ScriptInvalid, parse_script

    failed = False
    for file in files:
        try:
            script = parse_script(_read(file))
        except ScriptInvalid as invalid:
            failed = True
            for error in invalid.errors:
                typer.echo(_located(file, error))
            continue
        typer.echo(f"OK {script.name} ({script.language.value}, {len(script.questions)} questions)")
    if failed:
        raise typer.Exit(1)


@app.command("render")
def render(
    file: Annotated[Path, typer.Argument(help="script YAML file")],
    out: Annotated[Path | None, typer.Option(help="prompt cache; default DATA_DIR/prompts")] = None,
    var: VarOption = None,
) -> None:
    """Render every prompt of a script to 8 kHz WAV and print the paths."""
    from rich.progress import Progress

    from huifang.ivr.prompts import PromptRenderError, render_script

    script = _load(file)
    variables = _variables(script.language.value, var)
    target = out if out is not None else _default_prompts_dir()
    total = sum(1 for _ in script.prompts())
    with Progress(transient=True) as progress:
        task = progress.add_task(f"rendering {script.name}", total=total)
        try:
            rendered = render_script(
                script,
                target,
                variables,
                audio_root=file.parent,
                on_prompt=lambda _key, _path: progress.advance(task),
            )
        except PromptRenderError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    for key, path in rendered.items():
        typer.echo(f"{key}\t{path}")


@app.command("try")
def try_script(
    file: Annotated[Path, typer.Argument(help="script YAML file")],
    var: VarOption = None,
) -> None:
    """Play a script as text: type keys, `say:words`, `hangup`, or an empty line (silence)."""
    from huifang.ivr.actions import INPUT_ACTIONS
    from huifang.ivr.codec import result_to_dict
    from huifang.ivr.interpreter import Session

    script = _load(file)
    session = Session(script, _variables(script.language.value, var))
    typer.echo(f"— {script.name}: keys, say:words, say@0.4:words, hangup, or empty for silence")
    actions = session.start()
    while True:
        for action in actions:
            typer.echo(describe(action))
        if session.finished or not actions or not isinstance(actions[-1], INPUT_ACTIONS):
            break
        line = sys.stdin.readline()
        typer.echo(f"> {line.rstrip()}" if line else "> (end of input: hanging up)")
        actions = session.feed(typed_event(line, actions[-1]))
    typer.echo(json.dumps(result_to_dict(session.result()), ensure_ascii=False, indent=2))


def typed_event(line: str, waiting_for: Action) -> Event:
    """The event a typed line stands for, given the input the script is waiting for."""
    from huifang.ivr.actions import Record
    from huifang.ivr.events import (
        DigitsReceived,
        HungUp,
        NoInput,
        RecordingFinished,
        SpeechRecognized,
    )

    if not line:  # end of input: the citizen is gone
        return HungUp()
    text = line.strip()
    if text.lower() == "hangup":
        return HungUp()
    if not text:
        return NoInput()
    confidence = 1.0
    if text.startswith("say@") and ":" in text:
        head, text = text.split(":", 1)
        try:
            confidence = float(head.removeprefix("say@"))
        except ValueError:
            confidence = 0.0
        spoken: str | None = text.strip()
    elif text.startswith("say:"):
        spoken = text.removeprefix("say:").strip()
    else:
        spoken = None
    if isinstance(waiting_for, Record):
        words = spoken if spoken is not None else text
        # about three characters a second: a plausible length for the typed complaint
        return RecordingFinished(
            "typed", max(1.0, len(words) / 3), transcript=words, confidence=confidence
        )
    if spoken is not None:
        return SpeechRecognized(spoken, confidence)
    return DigitsReceived(text)


def describe(action: Action) -> str:
    """One line saying what a provider would do."""
    from huifang.ivr.actions import Collect, Hangup, Play, Record, SetVariable, Transfer

    match action:
        case Play(prompt=prompt, barge_in_digits=keys):
            audio = f" [audio {prompt.audio}]" if prompt.audio else ""
            interrupt = f"  (keys {keys} interrupt)" if keys else ""
            return f"SAY     {prompt.text}{audio}{interrupt}"
        case Collect() as collect:
            ways = [f"keys {'/'.join(collect.digits)}"] if collect.wants_digits else []
            if collect.wants_speech:
                ways.append(f"speech {' | '.join(collect.phrases)}")
            return f"WAIT    {', or '.join(ways)} ({collect.timeout_seconds:g} s)"
        case Record(max_seconds=longest, silence_seconds=silence):
            return f"RECORD  up to {longest} s, stops after {silence} s of silence"
        case SetVariable(name=name, value=value):
            return f"SET     {name}={value}"
        case Transfer(queue=queue):
            return f"TRANSFER to {queue}"
        case Hangup():
            return "HANGUP"
    return repr(action)


def _located(file: Path, error: ScriptError) -> str:
    """`FILE:LINE: path: message`, the form editors jump to."""
    where = f"{file}:{error.line}" if error.line else str(file)
    return f"{where}: {error if error.path else error.message}"


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{file}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc


def _load(file: Path) -> Script:
    from huifang.ivr.script import ScriptInvalid, parse_script

    try:
        return parse_script(_read(file))
    except ScriptInvalid as exc:
        for error in exc.errors:
            typer.echo(_located(file, error), err=True)
        raise typer.Exit(1) from exc


def _variables(language: str, pairs: list[str] | None) -> dict[str, str]:
    from huifang.ivr.template import KNOWN_VARIABLES, sample_variables

    variables = sample_variables(language)
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or name not in KNOWN_VARIABLES:
            known = ", ".join(KNOWN_VARIABLES)
            raise typer.BadParameter(
                f"{pair!r}: expected name=value with a name among {known}", param_hint="--var"
            )
        variables[name] = value
    return variables


def _default_prompts_dir() -> Path:
    from huifang.settings import Settings

    return Settings().prompts_dir
