"""The reply reader: what a citizen's free-text answer says, or that it cannot say.

`Reader.read(text, language)` gives a `Reading`: a label, its calibrated confidence, and
`review` — True when the reader is not sure and a person must read the answer.

Rules kept here:
- a reply digit (`1`, `３`, `回复2`) is read by the rules alone: the menu is unambiguous;
- everything else is read by the learned model, which weighs character n-grams together with
  the rules' reading (negation scope, opt-out, ratings and reasons) and the markers of
  sarcasm, rhetoric and long multi-clause text (`huifang.speech.features`);
- "not an answer" and "not sure" are different things. `unclear` with `review=False` is a
  confident reading that the reply does not answer the question (`好的`, `你们是哪里`,
  `wrong number`): the SMS survey asks again, once. `review=True` is the reader abstaining
  (mixed signals, sarcasm, a rhetorical question, text it cannot settle, a script it has no
  lexicon for): the reply goes straight to the agents' review inbox, never re-asked;
- safety first: any reading but unsatisfied abstains when the model gives a complaint a
  chance of at least `Policy.complaint_risk`, when the rules read a complaint in it, or when
  it holds words of a grievance (`still`, `nobody`, `还是`, `没人`, a negation after `but` or
  `就是`: `features.grievance_cues`) or a mark of sarcasm, and
  a satisfied one when the rules found any grievance in the reply at all; a
  complaint misread as satisfied is the one mistake that loses a person. Mixed signals (the
  rules found praise and grievance), sarcasm markers, questions and long multi-clause text
  need the higher `Policy.marked_confidence`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huifang.domain.enums import Satisfaction
from huifang.speech.features import answer_features
from huifang.speech.model import (
    LABELS,
    Policy,
    ReplyModel,
    deployed_model_path,
    load_model,
    packaged_model_path,
)

__all__ = [
    "GRIEVANCES",
    "HIDDEN_GRIEVANCES",
    "LOSING",
    "MARKS",
    "RULES_COMPLAIN",
    "Reader",
    "Reading",
    "ReviewReason",
    "doubt",
    "load_reader",
    "model_path",
]

_UNSATISFIED = LABELS.index(Satisfaction.unsatisfied)
#: readings that close a complaint without a person seeing it (`unclear` is asked again, then
#: reviewed)
LOSING = (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.opt_out)
#: features of a reply that may say the opposite of its words, or that is hard to settle
MARKS = frozenset(
    {"mark:quote", "mark:laughter", "mark:eye_roll", "mark:question", "mark:clauses=3+"}
    | {"mark:mixed"}
)
#: the rules read a complaint: a reading other than unsatisfied disagrees with them
RULES_COMPLAIN = "rule:unsatisfied"
#: the rules found a grievance somewhere: no reply holding one is read as plainly satisfied
GRIEVANCES = frozenset({"role:-reason", "role:-reason~", "role:unsatisfied", "role:-weak"})
#: words of a failure or of a problem still there (`still`, `nobody`, `还是`, `没人`), a
#: negation after a contrast (`friendly, but nothing changed`), a rating asked back
#: (`满意？你们来过吗`), or a mark of sarcasm (quotes,
#: laughter, an eye-roll: `yeah right, satisfied`): no reading that closes the reply stands
#: beside one, whatever the model says (new writers hide complaints behind praise)
HIDDEN_GRIEVANCES = frozenset(
    {"mark:grievance", "mark:contrast", "mark:rating_asked"}
    | {"mark:quote", "mark:laughter", "mark:eye_roll"}
)


class ReviewReason:
    """Why the reader abstained (stored with the review item)."""

    low_confidence = "low_confidence"
    complaint_risk = "complaint_risk"
    marked = "marked"
    unknown_language = "unknown_language"


@dataclass(frozen=True, slots=True)
class Reading:
    label: Satisfaction
    confidence: float
    #: not sure: a person must read it (`label` is then only the reader's best guess)
    review: bool
    #: why it abstained, empty when it did not
    reason: str
    evidence: str
    #: a reply digit, read by the menu rule (not free text)
    menu: bool
    #: the reader's model version, stored with every answer it labels
    version: str
    #: the calibrated chance that the answer is a complaint
    complaint: float


class Reader:
    def __init__(self, model: ReplyModel) -> None:
        self.model = model

    @property
    def version(self) -> str:
        return self.model.version

    def read(self, text: str, language: str) -> Reading:
        features = answer_features(text, language)
        rules = features.rules
        decided = rules.classification
        if rules.decided_by == "menu":
            complaint = 1.0 if decided.label is Satisfaction.unsatisfied else 0.0
            return Reading(
                decided.label, decided.confidence, False, "", decided.evidence, True,
                self.version, complaint,
            )  # fmt: skip
        if features.foreign:
            return Reading(
                Satisfaction.unclear, 0.0, True, ReviewReason.unknown_language, "", False,
                self.version, 0.0,
            )  # fmt: skip
        probabilities = self.model.for_language(rules.language).probabilities(features.names)
        confidence = max(probabilities)
        label = LABELS[probabilities.index(confidence)]
        complaint = probabilities[_UNSATISFIED]
        reason = doubt(self.model.policy, label, confidence, complaint, features.names)
        return Reading(
            label, confidence, bool(reason), reason, decided.evidence, False, self.version,
            complaint,
        )  # fmt: skip


def doubt(
    policy: Policy, label: Satisfaction, confidence: float, complaint: float, names: tuple[str, ...]
) -> str:
    """Why a reading must go to review under `policy`; empty when it need not."""
    if label is not Satisfaction.unsatisfied:
        if complaint >= policy.complaint_risk or RULES_COMPLAIN in names:
            return ReviewReason.complaint_risk
        if label in LOSING and not HIDDEN_GRIEVANCES.isdisjoint(names):
            return ReviewReason.complaint_risk
        if label is Satisfaction.satisfied and not GRIEVANCES.isdisjoint(names):
            return ReviewReason.complaint_risk
        if confidence < policy.marked_confidence and not MARKS.isdisjoint(names):
            return ReviewReason.marked
    unsatisfied = label is Satisfaction.unsatisfied
    if confidence < (policy.complaint_confidence if unsatisfied else policy.confidence):
        return ReviewReason.low_confidence
    return ""


def model_path(models_dir: Path) -> Path:
    """The model the reader loads: the deployed one in `models_dir`, else the packaged one."""
    deployed = deployed_model_path(models_dir)
    return deployed if deployed.is_file() else packaged_model_path()


def load_reader(models_dir: Path) -> Reader:
    return Reader(load_model(model_path(models_dir)))
