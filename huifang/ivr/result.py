"""What a survey call produced: one answer per question asked, and what follows from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from huifang.domain.enums import Satisfaction


class AnswerMode(StrEnum):
    dtmf = "dtmf"
    speech = "speech"
    recording = "recording"
    none = "none"  # retries exhausted: the question was asked, nothing usable came back


@dataclass(frozen=True, slots=True)
class Answer:
    question_id: str
    #: what the question measures: attitude / arrival_time / handling / overall / confirm / reason
    dimension: str
    outcome: Satisfaction | None
    value: str
    mode: AnswerMode
    confidence: float = 1.0
    recording_path: str | None = None
    transcript: str = ""


@dataclass(frozen=True, slots=True)
class SurveyResult:
    answers: tuple[Answer, ...]
    #: the overall verdict: the `overall` question's outcome, else the worst dimension's
    outcome: Satisfaction
    #: true when any answer is unsatisfied: a human must follow up
    escalate: bool
    #: the script reached its closing (false when the citizen hung up part-way)
    completed: bool
    hung_up: bool = False
    #: the person who answered says they did not make the call (pressed 9 at the confirmation)
    not_the_caller: bool = False
    opted_out: bool = False
    variables: dict[str, str] = field(default_factory=dict)
