"""Training the reply reader's model: deterministic, small, judged on a frozen test split
before it replaces the active model; agents' reviewed labels join the corpus on request.

A small corpus cut from the shipped train and dev splits keeps these tests quick; the test
split here is made of dev rows (the shipped frozen split is never read by tests).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from huifang.bootstrap import build_runtime
from huifang.cli import app
from huifang.domain.enums import Satisfaction
from huifang.followup.review import label_review
from huifang.settings import Settings
from huifang.speech.corpus import CorpusRow, read_split, write_corpus
from huifang.speech.evaluate import Scored, evaluate
from huifang.speech.model import (
    SCALE,
    artefact_bytes,
    deployed_model_path,
    load_model_bytes,
    packaged_model_path,
)
from huifang.speech.train import Judgement, train_model
from tests.factories import T0, UNREADABLE_REPLY, make_review_item, make_user

runner = CliRunner()


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for language in ("zh-CN", "en-US"):
        train = read_split("train", language=language)
        dev = read_split("dev", language=language)
        write_corpus(folder / f"train.{language}.tsv", train[::5])
        write_corpus(folder / f"dev.{language}.tsv", dev[::4])
        write_corpus(folder / f"test.{language}.tsv", dev[1::4])
    return folder


def rows(folder: Path, split: str) -> list[CorpusRow]:
    return read_split(split, folder)


def test_the_same_corpus_gives_the_same_artefact_byte_for_byte(small_corpus: Path) -> None:
    first = train_model(rows(small_corpus, "train"), rows(small_corpus, "dev"))
    second = train_model(rows(small_corpus, "train"), rows(small_corpus, "dev"))
    assert hashlib.sha256(first.data).digest() == hashlib.sha256(second.data).digest()
    assert first.model.version == second.model.version


def test_the_artefact_is_small_and_reads_back_as_a_model(small_corpus: Path) -> None:
    trained = train_model(rows(small_corpus, "train"), rows(small_corpus, "dev"))
    assert len(trained.data) < 512 * 1024
    model = load_model_bytes(trained.data)
    assert set(model.languages) == {"zh-CN", "en-US"}
    assert model.trained_on["train_rows"] == len(rows(small_corpus, "train"))


def test_the_chosen_policy_loses_no_complaint_out_of_fold(small_corpus: Path) -> None:
    trained = train_model(rows(small_corpus, "train"), rows(small_corpus, "dev"))
    assert trained.cross_validated.lost_complaints == 0


def test_a_candidate_losing_more_complaints_is_not_judged_no_worse() -> None:
    lost = evaluate([Scored(Satisfaction.unsatisfied, "satisfied", False)])
    kept = evaluate([Scored(Satisfaction.unsatisfied, "unsatisfied", False)])
    assert not Judgement(before=kept, before_version="a", after=lost).no_worse
    assert Judgement(before=lost, before_version="a", after=kept).no_worse
    assert Judgement(before=kept, before_version="a", after=kept).no_worse


def test_train_with_out_writes_the_model_and_prints_its_figures(
    small_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model.json.gz"
    result = runner.invoke(
        app, ["speech", "train", "--corpus", str(small_corpus), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    for heading in ("cross-validated", "dev (model fitted on train only)", "train (the final"):
        assert heading in result.stdout
    assert "training time" in result.stdout and out.is_file()
    assert "frozen test split" not in result.stdout  # an explicit --out is not judged


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("HUIFANG_DATA_DIR", str(folder))
    monkeypatch.delenv("HUIFANG_DATABASE_URL", raising=False)
    monkeypatch.delenv("HUIFANG_MODELS_DIR", raising=False)
    return folder


def careless_model() -> bytes:
    """The shipped model with its weights wiped and a bias for satisfied: it reads every reply
    the rules do not flag as satisfied, so it loses complaints."""
    artefact = json.loads(gzip.decompress(packaged_model_path().read_bytes()))
    for part in artefact["languages"].values():
        part["weights"] = [0] * len(part["weights"])
        part["bias"] = [SCALE * 9, 0, 0, 0, 0]
    artefact["policy"] = {"confidence": 0.0, "complaint_risk": 1.0, "marked_confidence": 0.0}
    return artefact_bytes(artefact)


def test_train_installs_a_model_losing_no_more_complaints_than_the_active_one(
    small_corpus: Path, data_dir: Path
) -> None:
    installed = deployed_model_path(data_dir / "models")
    installed.parent.mkdir(parents=True)
    installed.write_bytes(careless_model())
    careless = load_model_bytes(installed.read_bytes()).version
    result = runner.invoke(app, ["speech", "train", "--corpus", str(small_corpus)])
    assert result.exit_code == 0, result.output
    assert f"frozen test split, before (model {careless})" in result.stdout
    assert "frozen test split, after" in result.stdout and "installed" in result.stdout
    assert load_model_bytes(installed.read_bytes()).version != careless


def test_train_keeps_the_active_model_when_the_new_one_loses_more_complaints(
    small_corpus: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train_model(rows(small_corpus, "train"))
    worse = replace(trained, data=careless_model(), model=load_model_bytes(careless_model()))
    monkeypatch.setattr("huifang.speech.train.train_model", lambda *a, **k: worse)
    result = runner.invoke(app, ["speech", "train", "--corpus", str(small_corpus)])
    assert result.exit_code == 0, result.output
    assert "kept the active model" in result.stdout
    assert not deployed_model_path(data_dir / "models").exists()


def test_train_refuses_to_install_a_model_without_a_test_split_to_judge_it_on(
    small_corpus: Path, data_dir: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "no-test"
    corpus.mkdir()
    for name in ("train.zh-CN.tsv", "dev.zh-CN.tsv"):
        (corpus / name).write_bytes((small_corpus / name).read_bytes())
    result = runner.invoke(app, ["speech", "train", "--corpus", str(corpus)])
    assert result.exit_code == 1
    assert "no frozen test split to judge the model on; give --out FILE" in result.output


def test_train_include_reviewed_learns_from_the_labels_agents_gave(
    small_corpus: Path, data_dir: Path, tmp_path: Path
) -> None:
    runtime = build_runtime(Settings())
    with Session(runtime.engine, expire_on_commit=False) as session:
        review_id = make_review_item(session, runtime.settings)
        label_review(session, review_id, agent=make_user(session),
                     label=Satisfaction.unsatisfied, now=T0 + timedelta(hours=1), sla_hours=24)  # fmt: skip
        session.commit()
    runtime.close()
    out = tmp_path / "model.json.gz"
    result = runner.invoke(
        app, ["speech", "train", "--corpus", str(small_corpus), "--include-reviewed", "--out", str(out)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert " + 1 reviewed rows" in result.output
    assert load_model_bytes(out.read_bytes()).trained_on["reviewed_rows"] == 1
    exported = runner.invoke(app, ["speech", "reviewed"])
    header, row = exported.stdout.splitlines()
    assert header.split("\t")[:6] == [
        "text",
        "label",
        "channel",
        "kind",
        "labelled_by",
        "labelled_at",
    ]
    assert row.split("\t")[:4] == [UNREADABLE_REPLY, "unsatisfied", "sms", "reviewed"]
