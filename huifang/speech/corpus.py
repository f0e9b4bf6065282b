"""The reply corpus: labelled citizens' answers in TSV files (see `corpus/README.md`).

Rules kept here:
- a file is UTF-8, tab-separated, with the header `text label channel kind` (the older
  two-column `text label` sets are read too, as SMS rows);
- a bad row is refused with its file, line and the field to fix, never skipped;
- the splits live in `huifang/speech/corpus/`: `train` and `dev` teach and tune the reader,
  `test` is frozen and only ever evaluated.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from huifang.domain.enums import Satisfaction

__all__ = [
    "CHANNELS",
    "HEADER",
    "LANGUAGES",
    "CorpusError",
    "CorpusRow",
    "corpus_dir",
    "language_of",
    "read_corpus",
    "read_split",
    "same_text",
    "split_files",
    "write_corpus",
]

HEADER = ("text", "label", "channel", "kind")
CHANNELS = ("sms", "speech")
LANGUAGES = ("zh-CN", "en-US")
SPLITS = ("train", "dev", "test")


class CorpusError(ValueError):
    """A corpus file that cannot be read as the README describes."""


@dataclass(frozen=True, slots=True)
class CorpusRow:
    text: str
    label: Satisfaction
    channel: str = "sms"
    kind: str = ""
    language: str = "zh-CN"


def corpus_dir() -> Path:
    """The corpus shipped with the package."""
    return Path(str(resources.files("huifang.speech").joinpath("corpus")))


def split_files(split: str, folder: Path | None = None) -> list[tuple[Path, str]]:
    """The files of one split that exist, with their language: `[(train.zh-CN.tsv, zh-CN) …]`."""
    if split not in SPLITS:
        raise CorpusError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    root = folder or corpus_dir()
    found = [(root / f"{split}.{language}.tsv", language) for language in LANGUAGES]
    return [(path, language) for path, language in found if path.is_file()]


def language_of(path: Path, default: str) -> str:
    """`test.zh-CN.tsv` → zh-CN; a file not named after a language gets `default`."""
    parts = path.name.split(".")
    return parts[-2] if len(parts) >= 3 and parts[-2] in LANGUAGES else default


def read_corpus(path: Path, language: str | None = None) -> list[CorpusRow]:
    """Every row of `path`; its language from the file name unless `language` is given."""
    language = language or language_of(path, "zh-CN")
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not lines:
        raise CorpusError(f"{path}: empty file; the first line is the header {' '.join(HEADER)}")
    header = tuple(lines[0])
    if header[:4] != HEADER and header != HEADER[:2]:
        raise CorpusError(
            f"{path}:1: header {'/'.join(header)!r}: expected the columns {', '.join(HEADER)}"
        )
    rows = []
    for number, fields in enumerate(lines[1:], 2):
        if not any(field.strip() for field in fields):
            continue
        rows.append(
            _row(
                path, number, dict(zip(header, fields, strict=False)), len(fields), header, language
            )
        )
    return rows


def _row(
    path: Path,
    number: int,
    fields: dict[str, str],
    width: int,
    header: tuple[str, ...],
    language: str,
) -> CorpusRow:
    where = f"{path}:{number}"
    if width != len(header):
        raise CorpusError(f"{where}: {width} fields, expected {len(header)} separated by tabs")
    text, label = fields["text"], fields["label"]
    if not text.strip():
        raise CorpusError(f"{where}: text is empty")
    try:
        satisfaction = Satisfaction(label)
    except ValueError:
        known = ", ".join(s.value for s in Satisfaction)
        raise CorpusError(f"{where}: label {label!r} is not one of {known}") from None
    channel, kind = fields.get("channel", "sms"), fields.get("kind", "")
    if channel not in CHANNELS:
        raise CorpusError(f"{where}: channel {channel!r} is not one of {', '.join(CHANNELS)}")
    row_language = fields.get("language", language)
    if row_language not in LANGUAGES:
        raise CorpusError(
            f"{where}: language {row_language!r} is not one of {', '.join(LANGUAGES)}"
        )
    return CorpusRow(text, satisfaction, channel, kind, row_language)


def write_corpus(path: Path, rows: Iterable[CorpusRow]) -> int:
    """Write rows in the corpus format; how many. Tabs and line breaks become spaces."""
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(HEADER) + "\n")
        for row in rows:
            text = " ".join(row.text.replace("\t", " ").split())
            handle.write(f"{text}\t{row.label.value}\t{row.channel}\t{row.kind}\n")
            written += 1
    return written


def read_split(
    split: str, folder: Path | None = None, language: str | None = None
) -> list[CorpusRow]:
    """Every row of a split, in a fixed order (zh-CN, then en-US; file order within)."""
    rows: list[CorpusRow] = []
    for path, file_language in split_files(split, folder):
        if language is None or language == file_language:
            rows += read_corpus(path, file_language)
    return rows


def same_text(text: str) -> str:
    """A reply's text as compared across splits: case and spacing aside."""
    return " ".join(text.casefold().split())
