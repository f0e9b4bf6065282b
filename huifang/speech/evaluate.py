"""How well the reply reader reads a labelled corpus: pure figures from (label, reading) pairs.

Rules kept here (what each figure means):
- a reading the reader abstained on counts as `review`, a column of its own in the confusion
  matrix: it is not a mistake (a person reads it) but it is not a label the reader gave;
- accuracy counts a review as not correct; `labelled accuracy` is the accuracy on the rows
  the reader labelled itself (reviews left out);
- **lost complaints** are unsatisfied rows read as satisfied, basically satisfied or opt-out
  (none of them reaches a person), as a count and a share of the unsatisfied rows; the
  unsatisfied rows read as satisfied are given on their own too;
- the review share is taken over free-text rows: reply digits (read by the menu rule, never
  reviewed) are left out of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from huifang.domain.enums import Satisfaction
from huifang.speech.corpus import CorpusRow
from huifang.speech.model import LABELS
from huifang.speech.reader import LOSING, Reader

__all__ = ["REVIEW", "Evaluation", "Scored", "evaluate", "evaluate_reader", "render_text"]

REVIEW = "review"
COLUMNS = (*(label.value for label in LABELS), REVIEW)


@dataclass(frozen=True, slots=True)
class Scored:
    """One labelled row and how the reader read it."""

    label: Satisfaction
    predicted: str  # a label's value, or REVIEW
    menu: bool


@dataclass(frozen=True, slots=True)
class Evaluation:
    rows: int
    #: gold label → predicted column → count
    confusion: dict[str, dict[str, int]]
    free_text: int

    def count(self, gold: str, predicted: str) -> int:
        """Rows labelled `gold` in the corpus and read as `predicted` (a label or REVIEW)."""
        return self.confusion.get(gold, {}).get(predicted, 0)

    def gold(self, gold: str) -> int:
        """Rows labelled `gold` in the corpus."""
        return sum(self.confusion.get(gold, {}).values())

    def _predicted(self, predicted: str) -> int:
        return sum(row.get(predicted, 0) for row in self.confusion.values())

    @property
    def correct(self) -> int:
        return sum(self.count(label.value, label.value) for label in LABELS)

    @property
    def reviewed(self) -> int:
        return self._predicted(REVIEW)

    @property
    def accuracy(self) -> float | None:
        return _share(self.correct, self.rows)

    @property
    def labelled_accuracy(self) -> float | None:
        return _share(self.correct, self.rows - self.reviewed)

    @property
    def review_share(self) -> float | None:
        return _share(self.reviewed, self.free_text)

    @property
    def unsatisfied(self) -> int:
        return self.gold(Satisfaction.unsatisfied.value)

    @property
    def lost_complaints(self) -> int:
        return sum(self.count(Satisfaction.unsatisfied.value, label.value) for label in LOSING)

    @property
    def lost_share(self) -> float | None:
        return _share(self.lost_complaints, self.unsatisfied)

    @property
    def unsatisfied_as_satisfied(self) -> int:
        return self.count(Satisfaction.unsatisfied.value, Satisfaction.satisfied.value)

    def precision(self, label: Satisfaction) -> float | None:
        return _share(self.count(label.value, label.value), self._predicted(label.value))

    def recall(self, label: Satisfaction) -> float | None:
        return _share(self.count(label.value, label.value), self.gold(label.value))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "free_text_rows": self.free_text,
            "accuracy": self.accuracy,
            "labelled_accuracy": self.labelled_accuracy,
            "reviewed": self.reviewed,
            "review_share": self.review_share,
            "unsatisfied": self.unsatisfied,
            "lost_complaints": self.lost_complaints,
            "lost_share": self.lost_share,
            "lost_by_reading": {
                label.value: self.count(Satisfaction.unsatisfied.value, label.value)
                for label in LOSING
            },
            "unsatisfied_as_satisfied": self.unsatisfied_as_satisfied,
            "labels": {
                label.value: {
                    "rows": self.gold(label.value),
                    "precision": self.precision(label),
                    "recall": self.recall(label),
                }
                for label in LABELS
            },
            "confusion": {
                gold.value: {column: self.count(gold.value, column) for column in COLUMNS}
                for gold in LABELS
            },
        }


def evaluate(scored: Iterable[Scored]) -> Evaluation:
    confusion: dict[str, dict[str, int]] = {}
    rows = free_text = 0
    for row in scored:
        rows += 1
        free_text += not row.menu
        cell = confusion.setdefault(row.label.value, {})
        cell[row.predicted] = cell.get(row.predicted, 0) + 1
    return Evaluation(rows, confusion, free_text)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def render_text(evaluation: Evaluation, title: str = "") -> str:
    """The figures as an operator reads them in a terminal."""
    e = evaluation
    lines = [title] if title else []
    lines += [
        f"rows                      {e.rows}  ({e.free_text} free text)",
        f"accuracy                  {_percent(e.accuracy)}  (a review counts as a miss)",
        f"accuracy, labelled itself {_percent(e.labelled_accuracy)}  ({e.rows - e.reviewed} rows)",
        f"sent to review            {e.reviewed}  = {_percent(e.review_share)} of free text",
        f"lost complaints           {e.lost_complaints} of {e.unsatisfied} unsatisfied"
        f" = {_percent(e.lost_share)}"
        + "  (" + ", ".join(
            f"as {label.value}: {e.count(Satisfaction.unsatisfied.value, label.value)}"
            for label in LOSING
        ) + ")",
        f"unsatisfied as satisfied  {e.unsatisfied_as_satisfied}",
        "",
        f"{'label':22}{'rows':>6}{'precision':>11}{'recall':>9}",
    ]  # fmt: skip
    for label in LABELS:
        lines.append(
            f"{label.value:22}{e.gold(label.value):>6}"
            f"{_percent(e.precision(label)):>11}{_percent(e.recall(label)):>9}"
        )
    lines += ["", "confusion (rows: the corpus label; columns: the reading)"]
    short = {c: c.replace("basically_satisfied", "basic")[:11] for c in COLUMNS}
    lines.append(f"{'':22}" + "".join(f"{short[c]:>12}" for c in COLUMNS))
    for gold in LABELS:
        cells = "".join(f"{e.count(gold.value, c):>12}" for c in COLUMNS)
        lines.append(f"{gold.value:22}{cells}")
    return "\n".join(lines)


def evaluate_reader(reader: Reader, rows: Iterable[CorpusRow]) -> Evaluation:
    """Read every row as the webhook would, one at a time, and score the readings."""
    scored = []
    for row in rows:
        reading = reader.read(row.text, row.language)
        predicted = REVIEW if reading.review else reading.label.value
        scored.append(Scored(row.label, predicted, reading.menu))
    return evaluate(scored)
