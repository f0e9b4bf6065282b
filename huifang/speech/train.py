"""Training the reply reader's model from the corpus (`huifang speech train`).

Rules kept here:
- deterministic: rows are read in file order, folds are drawn with a fixed seed, the solver
  is deterministic and weights are rounded before they are stored, so the same corpus gives
  the same artefact, byte for byte (`model.artefact_bytes`);
- only train and dev rows (and, when asked, rows reviewed by agents) are learnt from; the
  frozen test split is never read here;
- one logistic regression per language over binary, L2-normalised features; its confidence
  is calibrated by a temperature fitted on out-of-fold predictions (5-fold cross-validation
  over train + dev), and the abstention policy is chosen on the same out-of-fold predictions:
  the rows it labels itself at least `ACCURACY_TARGET` right, the fewest complaints lost
  (`LOST_TARGET`: none) and then the fewest reviews; with each fold left out, the laxest
  thresholds losing none of the other folds' complaints are found too, and each complaint
  threshold is set to the strictest of these choices (a margin for complaints not seen);
- reply digits are read by the menu rule and are no part of the model's training.

scikit-learn is imported here only: reading needs numpy alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from huifang.domain.enums import Satisfaction
from huifang.speech.corpus import CorpusRow
from huifang.speech.evaluate import REVIEW, Evaluation, Scored, evaluate, evaluate_reader
from huifang.speech.features import AnswerFeatures, answer_features
from huifang.speech.model import (
    FORMAT,
    LABELS,
    SCALE,
    Policy,
    ReplyModel,
    artefact_bytes,
    load_model_bytes,
)
from huifang.speech.reader import (
    GRIEVANCES,
    HIDDEN_GRIEVANCES,
    LOSING,
    MARKS,
    RULES_COMPLAIN,
    Reader,
    doubt,
)

__all__ = ["Judgement", "Trained", "judge", "train_model"]

#: inverse regularisation strength of the logistic regression (chosen by cross-validation)
C = 32.0
FOLDS = 5
SEED = 20261124
#: at most this share of complaints may be lost in cross-validation: none (the target on a
#: new writer's replies is 1 %, and cross-validation over rows the rules were written from
#: flatters)
LOST_TARGET = 0.0
#: the rows the reader labels itself must be at least this right in cross-validation (98 %
#: on a new writer's replies)
ACCURACY_TARGET = 0.99
#: a reply with markers of sarcasm, rhetoric, mixed signals or many clauses is labelled only
#: this sure at least (by design: cross-validation holds too few of them to choose it)
MARKED_FLOOR = 0.95
#: a feature must occur in this many training rows to be learnt
MIN_ROWS = 2
_TEMPERATURES = np.round(np.arange(0.3, 3.01, 0.05), 2)
_SATISFIED = LABELS.index(Satisfaction.satisfied)
_UNSATISFIED = LABELS.index(Satisfaction.unsatisfied)
#: readings that close a complaint without a person seeing it
_LOSING = [LABELS.index(label) for label in LOSING]
#: the complaint chances at which a reading other than unsatisfied may abstain: kept low
#: whatever cross-validation would allow (its few lost complaints are no guide to a new writer)
RISKS = np.round(np.arange(0.01, 0.051, 0.01), 2)


@dataclass(frozen=True, slots=True)
class Trained:
    data: bytes
    model: ReplyModel
    cross_validated: Evaluation
    dev: Evaluation | None
    train: Evaluation
    seconds: float


@dataclass(frozen=True, slots=True)
class _Example:
    row: CorpusRow
    features: AnswerFeatures

    @property
    def language(self) -> str:
        return self.features.rules.language

    @property
    def menu(self) -> bool:
        return self.features.rules.decided_by == "menu"


@dataclass(frozen=True, slots=True)
class _Fit:
    features: list[str]
    weights: np.ndarray  # (features, labels)
    bias: np.ndarray

    def logits(self, examples: Sequence[_Example]) -> np.ndarray:
        matrix = _matrix(examples, {name: i for i, name in enumerate(self.features)})
        result: np.ndarray = matrix @ self.weights + self.bias
        return result


def train_model(
    train_rows: Sequence[CorpusRow],
    dev_rows: Sequence[CorpusRow] = (),
    *,
    reviewed_rows: Sequence[CorpusRow] = (),
) -> Trained:
    """Fit, calibrate and choose the policy; the artefact and its figures."""
    started = time.perf_counter()
    train = _examples([*train_rows, *reviewed_rows])
    dev = _examples(dev_rows)
    everything = [*train, *dev]
    languages = sorted({e.language for e in everything if not e.menu})
    out_of_fold: dict[str, tuple[list[_Example], np.ndarray]] = {}
    temperatures: dict[str, float] = {}
    folds: list[np.ndarray] = []
    for language in languages:
        examples = [e for e in everything if e.language == language and not e.menu]
        logits, fold_of = _cross_validated_logits(examples)
        temperatures[language] = _temperature(logits, _targets(examples))
        out_of_fold[language] = (examples, logits)
        folds.append(fold_of)
    policy = _choose_policy(
        [
            (example, _softmax(logits[i] / temperatures[language]))
            for language, (examples, logits) in out_of_fold.items()
            for i, example in enumerate(examples)
        ],
        [e for e in everything if e.menu],
        np.concatenate(folds) if folds else np.zeros(0, dtype=np.int64),
    )
    cross_validated = _evaluate_probabilities(
        [
            (example, _softmax(logits[i] / temperatures[language]))
            for language, (examples, logits) in out_of_fold.items()
            for i, example in enumerate(examples)
        ],
        [e for e in everything if e.menu],
        policy,
    )
    trained_on = {
        "train_rows": len(train_rows),
        "dev_rows": len(dev_rows),
        "reviewed_rows": len(reviewed_rows),
    }
    final = {
        language: _fit([e for e in everything if e.language == language and not e.menu])
        for language in languages
    }
    data = artefact_bytes(_artefact(final, temperatures, policy, trained_on))
    model = load_model_bytes(data)
    dev_figures = None
    if dev:
        on_train = {
            language: _fit([e for e in train if e.language == language and not e.menu])
            for language in languages
        }
        held_out = load_model_bytes(
            artefact_bytes(_artefact(on_train, temperatures, policy, trained_on))
        )
        dev_figures = evaluate_reader(Reader(held_out), dev_rows)
    return Trained(
        data,
        model,
        cross_validated,
        dev_figures,
        evaluate_reader(Reader(model), [*train_rows, *reviewed_rows]),
        time.perf_counter() - started,
    )


def _examples(rows: Sequence[CorpusRow]) -> list[_Example]:
    return [_Example(row, answer_features(row.text, row.language)) for row in rows]


def _targets(examples: Sequence[_Example]) -> np.ndarray:
    return np.array([LABELS.index(e.row.label) for e in examples])


def _matrix(examples: Sequence[_Example], index: dict[str, int]) -> Any:
    """Binary features, each row scaled to unit length (as `LanguageModel` reads them)."""
    from scipy.sparse import csr_matrix

    indptr, columns, values = [0], [], []
    for example in examples:
        names = set(example.features.names)
        found = sorted(index[name] for name in names if name in index)
        columns += found
        values += [1.0 / np.sqrt(len(names))] * len(found)
        indptr.append(len(columns))
    return csr_matrix(
        (np.array(values, dtype=np.float64), np.array(columns, dtype=np.int64), indptr),
        shape=(len(examples), len(index)),
    )


def _fit(examples: Sequence[_Example]) -> _Fit:
    from sklearn.linear_model import LogisticRegression

    counts: dict[str, int] = {}
    for example in examples:
        for name in set(example.features.names):
            counts[name] = counts.get(name, 0) + 1
    features = sorted(name for name, count in counts.items() if count >= MIN_ROWS)
    targets = _targets(examples)
    present = sorted(set(targets.tolist()))
    classifier = LogisticRegression(C=C, solver="newton-cg", max_iter=1000, tol=1e-6)
    classifier.fit(_matrix(examples, {n: i for i, n in enumerate(features)}), targets)
    # a label absent from this language's rows gets a weight column that never wins
    weights = np.zeros((len(features), len(LABELS)))
    bias = np.full(len(LABELS), -30.0)
    coefficients = classifier.coef_ if len(present) > 2 else _binary(classifier.coef_)
    intercepts = (
        classifier.intercept_ if len(present) > 2 else _binary(classifier.intercept_[None, :])[:, 0]
    )
    for column, label in enumerate(present):
        weights[:, label] = coefficients[column]
        bias[label] = intercepts[column]
    return _Fit(features, weights, bias)


def _binary(rows: np.ndarray) -> np.ndarray:
    """A two-class fit has one row of weights for the second class: as two rows, centred."""
    return np.vstack([-rows[0] / 2, rows[0] / 2])


def _cross_validated_logits(examples: Sequence[_Example]) -> tuple[np.ndarray, np.ndarray]:
    """Each example's logits from the fit without its fold, and its fold."""
    from sklearn.model_selection import StratifiedKFold

    targets = _targets(examples)
    logits = np.zeros((len(examples), len(LABELS)))
    fold_of = np.zeros(len(examples), dtype=np.int64)
    smallest = min(np.bincount(targets)[np.bincount(targets) > 0])
    folds = StratifiedKFold(n_splits=min(FOLDS, max(2, smallest)), shuffle=True, random_state=SEED)
    for fold, (fit_rows, held_rows) in enumerate(folds.split(np.zeros(len(examples)), targets)):
        fit = _fit([examples[i] for i in fit_rows])
        logits[held_rows] = fit.logits([examples[i] for i in held_rows])
        fold_of[held_rows] = fold
    return logits, fold_of


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return result


def _temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that makes out-of-fold confidences honest (least log loss)."""
    losses = [
        -np.log(_softmax(logits / t)[np.arange(len(targets)), targets] + 1e-12).mean()
        for t in _TEMPERATURES
    ]
    return float(_TEMPERATURES[int(np.argmin(losses))])


def _choose_policy(
    read: Sequence[tuple[_Example, np.ndarray]], menu: Sequence[_Example], folds: np.ndarray
) -> Policy:
    """The policy sending the fewest free-text rows to review within the targets, with a
    margin for complaints not seen (`folds`: each row's fold).

    One choice on every out-of-fold reading fits its thresholds to the very complaints it
    must not lose. So the laxest thresholds losing none of the complaints left when each fold
    is left out are found too, and every threshold a complaint could slip past is set to the
    strictest of all these choices. The threshold of unsatisfied readings, which lose
    nothing, is the first choice's."""
    readings = _Readings.of(read, menu)
    chosen = [_search(readings, np.ones(len(read), dtype=bool), ACCURACY_TARGET)]
    # the margin is for complaints only: without each fold, the laxest thresholds losing none
    # of the other folds' complaints, whatever the accuracy
    chosen += [_search(readings, folds != fold, 0.0) for fold in sorted(set(folds.tolist()))]
    return Policy(
        max(policy.confidence for policy in chosen),
        min(policy.complaint_risk for policy in chosen),
        max(policy.marked_confidence for policy in chosen),
        # an unsatisfied reading reaches a person either way: no margin needed for it
        chosen[0].complaint_confidence,
    )


@dataclass(frozen=True, slots=True)
class _Readings:
    """Out-of-fold readings as arrays, for `reader.doubt` on every row at once."""

    targets: np.ndarray
    best: np.ndarray
    confidence: np.ndarray
    complaint: np.ndarray
    #: the reading must abstain whatever the thresholds: the rules read a complaint, a
    #: grievance beside a satisfied reading, words of a grievance
    forced: np.ndarray
    marked: np.ndarray
    menu_complaints: int
    menu_rows: int
    menu_right: int

    @classmethod
    def of(cls, read: Sequence[tuple[_Example, np.ndarray]], menu: Sequence[_Example]) -> _Readings:
        probabilities = np.array([p for _, p in read])
        names = [e.features.names for e, _ in read]
        best = probabilities.argmax(axis=1)
        rules_complain = np.array([RULES_COMPLAIN in n for n in names])
        grievance = np.array([not GRIEVANCES.isdisjoint(n) for n in names])
        hidden = np.array([not HIDDEN_GRIEVANCES.isdisjoint(n) for n in names])
        return cls(
            targets=np.array([LABELS.index(e.row.label) for e, _ in read]),
            best=best,
            confidence=probabilities.max(axis=1),
            complaint=probabilities[:, _UNSATISFIED],
            forced=(best != _UNSATISFIED)
            & (
                rules_complain
                | (np.isin(best, _LOSING) & hidden)
                | ((best == _SATISFIED) & grievance)
            ),
            marked=np.array([not MARKS.isdisjoint(n) for n in names]),
            menu_complaints=_menu_count(menu, _UNSATISFIED),
            menu_rows=len(menu),
            menu_right=sum(1 for e in menu if e.features.rules.classification.label is e.row.label),
        )


def _search(r: _Readings, rows: np.ndarray, accuracy: float) -> Policy:
    """The policy that labels what it keeps of `rows` at least `accuracy` right (reply
    digits counted as read), loses the fewest of their complaints beyond `LOST_TARGET` (none,
    when the thresholds can keep every one), and then sends the fewest to review.

    A complaint no threshold in the grid keeps is counted, not chased: it shows in the
    cross-validated figures as lost, and is mended in the rules or the corpus. Rows read
    unsatisfied answer to `complaint_confidence` alone and the others never to it, so its
    every value is tried at once beside each choice of the other thresholds."""
    targets, best, confidence = r.targets[rows], r.best[rows], r.confidence[rows]
    complaint, forced, marked = r.complaint[rows], r.forced[rows], r.marked[rows]
    losing_complaint = np.isin(best, _LOSING) & (targets == _UNSATISFIED)
    complaints = max(1, int((targets == _UNSATISFIED).sum()) + r.menu_complaints)
    allowed = int(LOST_TARGET * complaints)
    read_unsatisfied = best == _UNSATISFIED
    right_reading = best == targets
    # for every complaint threshold: the unsatisfied readings kept, and how many are right
    thresholds = np.round(np.arange(0.40, 0.995, 0.01), 2)
    kept_complaints = confidence[read_unsatisfied][None, :] >= thresholds[:, None]
    complaint_kept = kept_complaints.sum(axis=1)
    complaint_right = (kept_complaints & right_reading[read_unsatisfied][None, :]).sum(axis=1)
    others = ~read_unsatisfied
    o_confidence, o_complaint = confidence[others], complaint[others]
    o_forced, o_marked, o_right = forced[others], marked[others], right_reading[others]
    o_losing = losing_complaint[others]
    chosen: tuple[tuple[int, float], Policy] | None = None
    for threshold in thresholds:
        for risk in RISKS:
            for marked_threshold in np.round(
                np.arange(max(threshold, MARKED_FLOOR), 0.995, 0.02), 2
            ):
                # `reader.doubt` on every row not read unsatisfied at once
                kept = ~(
                    o_forced
                    | (o_confidence < threshold)
                    | (o_complaint >= risk)
                    | (o_marked & (o_confidence < marked_threshold))
                )
                labelled = int(kept.sum()) + r.menu_rows + complaint_kept
                right = int((kept & o_right).sum()) + r.menu_right + complaint_right
                feasible = right >= accuracy * labelled
                if not feasible.any():
                    continue
                # the lowest complaint threshold that keeps the accuracy: the most kept
                lowest = int(np.argmax(feasible))
                lost = max(0, int((kept & o_losing).sum()) - allowed)
                reviewed = len(targets) - int(kept.sum()) - int(complaint_kept[lowest])
                key = (lost, reviewed / len(targets))
                if chosen is None or key < chosen[0]:
                    policy = Policy(
                        float(threshold), float(risk), float(marked_threshold),
                        float(thresholds[lowest]),
                    )  # fmt: skip
                    chosen = (key, policy)
    return chosen[1] if chosen else Policy(1.0, 0.0, 1.0, 1.0)


def _menu_count(menu: Sequence[_Example], label: int) -> int:
    return sum(1 for e in menu if LABELS.index(e.row.label) == label)


def _evaluate_probabilities(
    read: Sequence[tuple[_Example, np.ndarray]], menu: Sequence[_Example], policy: Policy
) -> Evaluation:
    scored = [Scored(e.row.label, e.features.rules.classification.label.value, True) for e in menu]
    for example, probabilities in read:
        best = int(probabilities.argmax())
        label = LABELS[best]
        reason = doubt(
            policy,
            label,
            float(probabilities[best]),
            float(probabilities[_UNSATISFIED]),
            example.features.names,
        )
        scored.append(Scored(example.row.label, REVIEW if reason else label.value, False))
    return evaluate(scored)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The active model and a candidate on the frozen test split."""

    before: Evaluation
    before_version: str
    after: Evaluation

    @property
    def no_worse(self) -> bool:
        """The candidate loses no larger share of complaints than the active model."""
        return (self.after.lost_share or 0.0) <= (self.before.lost_share or 0.0)


def judge(active: Reader, candidate: ReplyModel, test_rows: Sequence[CorpusRow]) -> Judgement:
    return Judgement(
        evaluate_reader(active, test_rows),
        active.version,
        evaluate_reader(Reader(candidate), test_rows),
    )


def _artefact(
    fits: dict[str, _Fit],
    temperatures: dict[str, float],
    policy: Policy,
    trained_on: dict[str, Any],
) -> dict[str, Any]:
    languages = {}
    for language, fit in fits.items():
        scaled = np.rint(fit.weights * SCALE).astype(np.int64)
        keep = np.abs(scaled).max(axis=1) > 0
        languages[language] = {
            "features": [name for name, kept in zip(fit.features, keep, strict=True) if kept],
            "weights": scaled[keep].ravel().tolist(),
            "bias": np.rint(fit.bias * SCALE).astype(np.int64).tolist(),
            "temperature": temperatures[language],
        }
    return {
        "format": FORMAT,
        "labels": [label.value for label in LABELS],
        "languages": languages,
        "policy": policy.as_dict(),
        "trained_on": trained_on,
    }
