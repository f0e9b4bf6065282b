"""The reply corpus as shipped: its files read cleanly, its splits are as large as promised,
and the frozen test split is the one written for it (its bytes are pinned here).

Nobody tunes on the test split and nobody edits it: if a hash below changes, the figures in
the README no longer describe a frozen split. Its rows are only ever read by
`huifang speech evaluate`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from huifang.domain.enums import Satisfaction
from huifang.speech.corpus import CorpusError, corpus_dir, read_corpus, read_split, split_files

FROZEN_TEST_SHA256 = {
    "test.zh-CN.tsv": "186d5f62824b261ae9b1e47e8dc4d5d1945dc857f0c065bd82ff870d589e4a39",
    "test.en-US.tsv": "cd8ae3bd5e63653d9647ee8d5ac98b627314c97b0aff91053e4bb8af23d14bde",
}


@pytest.mark.parametrize("name", sorted(FROZEN_TEST_SHA256))
def test_the_frozen_test_split_is_unchanged(name: str) -> None:
    digest = hashlib.sha256((corpus_dir() / name).read_bytes()).hexdigest()
    assert digest == FROZEN_TEST_SHA256[name]


@pytest.mark.parametrize(
    ("split", "language", "at_least"),
    [
        ("train", "zh-CN", 2200),
        ("dev", "zh-CN", 500),
        ("train", "en-US", 650),
        ("dev", "en-US", 180),
    ],
)
def test_the_learning_splits_are_as_large_as_promised(
    split: str, language: str, at_least: int
) -> None:
    rows = read_split(split, language=language)
    assert len(rows) >= at_least
    assert {row.label for row in rows} == set(Satisfaction)
    assert {row.channel for row in rows} == {"sms", "speech"}


def test_every_learning_file_reads_without_an_error() -> None:
    files = [path for split in ("train", "dev") for path, _ in split_files(split)]
    assert len(files) == 4
    for path in files:
        assert read_corpus(path)


def write(folder: Path, body: str) -> Path:
    path = folder / "train.zh-CN.tsv"
    path.write_text("text\tlabel\tchannel\tkind\n" + body, encoding="utf-8")
    return path


def test_a_row_with_the_wrong_number_of_fields_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "满意\tsatisfied\tsms\n")
    with pytest.raises(CorpusError, match=rf"{path}:2: 3 fields, expected 4"):
        read_corpus(path)


def test_an_unknown_channel_is_refused_naming_the_channels(tmp_path: Path) -> None:
    path = write(tmp_path, "满意\tsatisfied\tfax\tplain\n")
    with pytest.raises(CorpusError, match="channel 'fax' is not one of sms, speech"):
        read_corpus(path)


def test_a_file_without_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dev.en-US.tsv"
    path.write_text("great\tsatisfied\tsms\tplain\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r":1: header"):
        read_corpus(path)


def test_the_language_comes_from_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "dev.en-US.tsv"
    path.write_text("text\tlabel\tchannel\tkind\ngreat\tsatisfied\tsms\tplain\n", encoding="utf-8")
    assert read_corpus(path)[0].language == "en-US"
