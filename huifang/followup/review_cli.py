"""`huifang speech train` and `huifang speech reviewed`: the learning loop of the reply reader.

The corpus teaches the model; the replies agents labelled in the review inbox (待研判) join it
with `--include-reviewed`. A model trained for the deployment is judged on the frozen test
split beside the active one and installed in the models folder only when it loses no larger
share of complaints. Wired into the `speech` group by `huifang.cli`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from huifang.settings import Settings
from huifang.speech.cli import active_reader, fail
from huifang.speech.corpus import CorpusRow


def train_command(
    corpus: Path = typer.Option(
        None, "--corpus", file_okay=False, help="corpus folder (default: the shipped corpus)"
    ),
    out: Path = typer.Option(
        None,
        "--out",
        dir_okay=False,
        help="write the model here, unjudged (default: judge it on the frozen test split and "
        "install it in the models folder only when it loses no more complaints)",
    ),
    include_reviewed: bool = typer.Option(
        False, "--include-reviewed", help="also learn from the replies agents labelled in review"
    ),
) -> None:
    """Train the reply reader's model from the corpus (train + dev), deterministically.

    Prints cross-validated, dev and train figures and the training time. Without --out, the
    new model is evaluated beside the active one on the frozen test split (before/after) and
    replaces it only when its lost-complaint rate is no worse.
    """
    from huifang.speech.corpus import CorpusError, read_split
    from huifang.speech.evaluate import render_text
    from huifang.speech.model import deployed_model_path
    from huifang.speech.train import judge, train_model

    settings = Settings()
    try:
        train_rows, dev_rows = read_split("train", corpus), read_split("dev", corpus)
        test_rows = read_split("test", corpus) if out is None else []
    except (CorpusError, OSError) as exc:
        raise fail(exc) from exc
    if not train_rows:
        raise fail(CorpusError(f"no train.<lang>.tsv in {corpus or 'the shipped corpus'}"))
    if out is None and not test_rows:
        raise fail(CorpusError("no frozen test split to judge the model on; give --out FILE"))
    reviewed: list[CorpusRow] = _reviewed_rows(settings) if include_reviewed else []
    typer.echo(
        f"training on {len(train_rows)} train + {len(dev_rows)} dev"
        + (f" + {len(reviewed)} reviewed" if include_reviewed else "")
        + " rows …",
        err=True,
    )
    trained = train_model(train_rows, dev_rows, reviewed_rows=reviewed)
    typer.echo(render_text(trained.cross_validated, "cross-validated (5 folds over train + dev)"))
    if trained.dev is not None:
        typer.echo("\n" + render_text(trained.dev, "dev (model fitted on train only)"))
    typer.echo("\n" + render_text(trained.train, "train (the final model)"))
    typer.echo(
        f"\ntraining time {trained.seconds:.1f} s; model {trained.model.version}, "
        f"{len(trained.data) / 1024:.0f} KiB"
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(trained.data)
        typer.echo(f"wrote {out}")
        return
    verdict = judge(active_reader(), trained.model, test_rows)
    typer.echo(
        "\n"
        + render_text(verdict.before, f"frozen test split, before (model {verdict.before_version})")
    )
    typer.echo(
        "\n"
        + render_text(verdict.after, f"frozen test split, after (model {trained.model.version})")
    )
    if not verdict.no_worse:
        typer.echo("\nkept the active model: the new one loses more complaints on the test split")
        return
    target = deployed_model_path(settings.effective_models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".tmp")
    staged.write_bytes(trained.data)
    staged.replace(target)
    typer.echo(f"\ninstalled {target}: processes load it when they start")


def _reviewed_rows(settings: Settings) -> list[CorpusRow]:
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.followup.review import reviewed_rows

    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.engine) as session:
            rows = reviewed_rows(session)
    finally:
        runtime.close()
    return [CorpusRow(row.text, row.label, row.channel, "reviewed", row.language) for row in rows]


def reviewed_command(
    out: Path = typer.Option(None, "--out", dir_okay=False, help="write here (default: stdout)"),
) -> None:
    """Export the replies agents labelled in the review inbox as corpus rows, with who
    labelled each one and when (extra columns `labelled_by`, `labelled_at`)."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.followup.review import reviewed_rows
    from huifang.speech.corpus import HEADER

    runtime = build_runtime(Settings())
    try:
        with session_scope(runtime.engine) as session:
            rows = reviewed_rows(session)
    finally:
        runtime.close()
    lines = ["\t".join((*HEADER, "labelled_by", "labelled_at", "language"))]
    for row in rows:
        text = " ".join(row.text.replace("\t", " ").split())
        lines.append(
            "\t".join((text, row.label.value, row.channel, "reviewed", row.labelled_by,
                       row.labelled_at.isoformat(), row.language))
        )  # fmt: skip
    content = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(content)
    else:
        out.write_text(content, encoding="utf-8")
        typer.echo(f"wrote {len(rows)} reviewed rows to {out}", err=True)
