"""The IVR interpreter: one `Session` per call, events in, actions out, no I/O.

A provider calls `start()` when the citizen answers, executes the returned actions, and
feeds the outcome of the last input action back with `feed(event)`, until `finished`.
`result()` says what the call produced so far at any moment.

Rules this module keeps:
- No I/O, no clock, no randomness: the same script, variables and events give the same
  actions and result, which is what makes every path testable without a phone line.
- `feed` never raises on any event in any state; after the end it returns [].
  A hang-up at any point yields a partial result, not an exception. (A plugged-in speech
  matcher's own exceptions do propagate: a broken classifier must be seen, not hidden.)
- Every list of actions ends with exactly one input action (`Collect`, `Record`) or with
  the end of the call (`Hangup`, `Transfer`). Prompts before a `Collect` that takes keys
  carry those keys as barge-in digits: a citizen who knows the answer need not wait.
- A speech answer below the script's `low_confidence` is not trusted: the question is asked
  again (by keys only, when it has keys) and that counts as an invalid attempt. So is one the
  speech matcher is not sure of (it returns `UNSURE`: the reader abstained).
- What the citizen said is never dropped: a question that ends with no usable answer (retries
  exhausted, or a hang-up) after they spoke keeps their last words as an `unclear` answer,
  which the caller sends to the agents' review inbox.
- A call visits at most `max_steps` questions: a script loop the citizen keeps choosing
  ends with the closing rather than running forever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from huifang.domain.enums import Satisfaction
from huifang.ivr.actions import Action, Collect, Hangup, Play, Prompt, Record, SetVariable, Transfer
from huifang.ivr.events import (
    CallStarted,
    DigitsReceived,
    Event,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.ivr.result import Answer, AnswerMode, SurveyResult
from huifang.ivr.script import (
    CLOSING,
    HANGUP,
    Choice,
    PromptText,
    Question,
    Route,
    Script,
    next_step,
    normalize_speech,
)
from huifang.ivr.template import TemplateError, render_template

T = TypeVar("T")


class Unsure:
    """A speech matcher's answer when it cannot tell which choice was meant."""

    def __repr__(self) -> str:
        return "UNSURE"


UNSURE = Unsure()
SpeechMatcher = Callable[[str, Sequence[Choice]], Choice | Unsure | None]

#: the satisfaction grades, best first; the overall outcome is the worst one answered
GRADES = (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.unsatisfied)
#: a recording shorter than this with no transcript is silence, not a complaint
MIN_RECORDING_SECONDS = 1.0


class MissingVariables(TemplateError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"the script needs values for: {', '.join(names)}")
        self.names = names


def match_phrase(text: str, choices: Sequence[Choice]) -> Choice | None:
    """The choice whose phrase the recognized `text` contains; the longest phrase wins,
    so "不满意" is not read as "满意". Two different choices tied on length: no match."""
    heard = normalize_speech(text)
    best: Choice | None = None
    best_length = 0
    tied = False
    for choice in choices:
        for phrase in choice.phrases:
            normal = normalize_speech(phrase)
            if not normal or normal not in heard:
                continue
            if len(normal) > best_length:
                best, best_length, tied = choice, len(normal), False
            elif len(normal) == best_length and choice is not best:
                tied = True
    return None if tied else best


class Classified(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def review(self) -> bool: ...


def classifier_matcher(classify: Callable[[str, str], Classified], language: str) -> SpeechMatcher:
    """A `SpeechMatcher` that asks a reply reader (`huifang.speech.reader.Reader.read`) and
    picks the choice whose outcome is the label it gives.

    Choices the reader cannot name (a transfer to an agent, a choice without an outcome) and
    answers it labels unclear fall back to the phrase matcher, which may then pick only a
    choice without an outcome or an unsatisfied one: a phrase found inside a sentence
    (`满意？钱包到现在都没找到`) is no verdict of satisfaction. When the reader is not sure and
    no such phrase decides, the answer is `UNSURE`.
    """

    def match(text: str, choices: Sequence[Choice]) -> Choice | Unsure | None:
        reading = classify(text, language)
        if not reading.review:
            by_outcome = [
                c for c in choices if c.outcome is not None and c.outcome == reading.label
            ]
            if len(by_outcome) == 1:
                return by_outcome[0]
        phrase = match_phrase(text, choices)
        if phrase is not None and phrase.outcome in (None, Satisfaction.unsatisfied):
            return phrase
        return UNSURE if reading.review else None

    return match


class Session:
    """One survey call. Not thread-safe: a call's events arrive one after another."""

    def __init__(
        self,
        script: Script,
        variables: Mapping[str, str],
        *,
        speech_matcher: SpeechMatcher | None = None,
        max_steps: int = 100,
    ) -> None:
        missing = [name for name in script.variables_used if name not in variables]
        if missing:
            raise MissingVariables(missing)
        self.script = script
        self._incident = dict(variables)
        self._match = speech_matcher or match_phrase
        self._max_steps = max_steps
        self._steps = 0
        self._started = False
        self.finished = False
        self._completed = False
        self._hung_up = False
        self._not_the_caller = False
        self._current: int | None = None
        self._no_input = 0
        self._invalid = 0
        self._keys_only = False
        self._answers: list[Answer] = []
        self._set: dict[str, str] = {}
        #: the last words heard for the question being asked, and their confidence
        self._heard: tuple[str, float] | None = None

    # --- the provider's side ------------------------------------------------------------

    def start(self) -> list[Action]:
        """The citizen answered: greet and ask the first question."""
        if self._started or self.finished:
            return []
        self._started = True
        plays = [self._play("greeting", self.script.greeting)] if self.script.greeting else []
        return self._go(0, plays)

    def feed(self, event: Event) -> list[Action]:
        """What to do after `event`; [] once the call is over."""
        if self.finished:
            return []
        if isinstance(event, HungUp):
            if self._current is not None and self._heard is not None:
                self._keep_heard(self.script.questions[self._current])
            self.finished = True
            self._hung_up = True
            self._current = None
            return []
        if isinstance(event, CallStarted):
            return self.start()
        if self._current is None:
            # input before the call started: nothing was asked, so nothing to answer
            return []
        question = self.script.questions[self._current]
        if question.kind == "record":
            return self._on_recording(question, event)
        return self._on_choice(question, event)

    def result(self) -> SurveyResult:
        answers = tuple(self._answers)
        return SurveyResult(
            answers=answers,
            outcome=_verdict(answers),
            escalate=any(a.outcome == Satisfaction.unsatisfied for a in answers),
            completed=self._completed,
            hung_up=self._hung_up,
            not_the_caller=self._not_the_caller,
            opted_out=any(a.outcome == Satisfaction.opt_out for a in answers),
            variables=dict(self._set),
        )

    # --- answers -------------------------------------------------------------------------

    def _on_choice(self, question: Question, event: Event) -> list[Action]:
        if isinstance(event, NoInput) or (isinstance(event, DigitsReceived) and not event.digits):
            return self._no_answer(question)
        if isinstance(event, DigitsReceived) and question.takes_digits:
            chosen = next((c for c in question.choices if c.digit == event.digits), None)
            if chosen is not None:
                return self._answer(question, chosen, event.digits, AnswerMode.dtmf, 1.0)
        elif isinstance(event, SpeechRecognized) and question.takes_speech and not self._keys_only:
            if event.text.strip():
                self._heard = (event.text, event.confidence)
            if event.confidence < self.script.low_confidence:
                return self._retry_wrong(question, low_confidence=True)
            spoken = [c for c in question.choices if c.phrases]
            matched = self._match(event.text, spoken)
            if isinstance(matched, Unsure):
                return self._retry_wrong(question, low_confidence=True)
            # a plugged-in matcher may hand back a look-alike; only the script's own counts
            if matched is not None and matched in spoken:
                return self._answer(
                    question, matched, event.text, AnswerMode.speech, event.confidence
                )
        return self._retry_wrong(question, low_confidence=False)

    def _on_recording(self, question: Question, event: Event) -> list[Action]:
        if isinstance(event, RecordingFinished) and (
            event.transcript.strip() or event.duration_seconds >= MIN_RECORDING_SECONDS
        ):
            said, mode, path = event.transcript, AnswerMode.recording, event.path
            confidence = event.confidence if event.transcript else 1.0
        elif isinstance(event, SpeechRecognized) and event.text.strip():
            # Twilio and the simulator may hand back what was said instead of a file
            said, mode, path, confidence = event.text, AnswerMode.speech, None, event.confidence
        else:
            # silence, a bare key press (# to finish) or a too-short file: nothing was said
            return self._no_answer(question)
        self._answers.append(
            Answer(
                question_id=question.id,
                dimension=question.answer_dimension,
                outcome=None,
                value=said,
                mode=mode,
                confidence=confidence,
                recording_path=path,
                transcript=said,
            )
        )
        return self._route(Route(), question, "")

    def _answer(
        self, question: Question, choice: Choice, value: str, mode: AnswerMode, confidence: float
    ) -> list[Action]:
        self._answers.append(
            Answer(
                question_id=question.id,
                dimension=question.answer_dimension,
                outcome=choice.outcome,
                value=value,
                mode=mode,
                confidence=confidence,
                transcript=value if mode == AnswerMode.speech else "",
            )
        )
        at = f"{self._path(question)}.choices[{question.choices.index(choice)}]"
        return self._route(choice, question, f"{at}.say")

    def _no_answer(self, question: Question) -> list[Action]:
        self._no_input += 1
        limit = _pick(question.max_no_input, self.script.defaults.max_no_input)
        if self._no_input > limit:
            return self._give_up(question)
        return self._ask(question, [self._retry_prompt(question, "no_input_prompt")])

    def _retry_wrong(self, question: Question, *, low_confidence: bool) -> list[Action]:
        self._invalid += 1
        limit = _pick(question.max_invalid, self.script.defaults.max_invalid)
        if self._invalid > limit:
            return self._give_up(question)
        if low_confidence and question.takes_digits:
            self._keys_only = True
        name = "low_confidence_prompt" if low_confidence else "invalid_prompt"
        return self._ask(question, [self._retry_prompt(question, name)])

    def _give_up(self, question: Question) -> list[Action]:
        if self._heard is not None:
            self._keep_heard(question)
        else:
            self._answers.append(
                Answer(
                    question_id=question.id,
                    dimension=question.answer_dimension,
                    outcome=Satisfaction.unclear if question.kind == "choice" else None,
                    value="",
                    mode=AnswerMode.none,
                    confidence=0.0,
                )
            )
        route = question.on_no_answer or Route()
        return self._route(route, question, f"{self._path(question)}.on_no_answer.say")

    def _keep_heard(self, question: Question) -> None:
        """The question ends unanswered after the citizen spoke: their words stay, unclear."""
        assert self._heard is not None
        said, confidence = self._heard
        self._heard = None
        self._answers.append(
            Answer(
                question_id=question.id,
                dimension=question.answer_dimension,
                outcome=Satisfaction.unclear,
                value=said,
                mode=AnswerMode.speech,
                confidence=confidence,
                transcript=said,
            )
        )

    # --- moving through the script --------------------------------------------------------

    def _route(self, route: Route, question: Question, say_key: str) -> list[Action]:
        index = self.script.index_of(question.id)
        self._current = None
        self._heard = None
        actions: list[Action] = []
        for name, value in route.variables.items():
            self._set[name] = value
            actions.append(SetVariable(name, value))
        if route.not_the_caller:
            self._not_the_caller = True
        plays = [self._play(say_key, route.say)] if route.say else []
        if route.transfer:
            return [*actions, *self._end([*plays, Transfer(route.transfer)])]
        step = next_step(self.script, route.next or question.next, index)
        return [*actions, *self._go(step, plays)]

    def _go(self, step: int | str, plays: list[Play]) -> list[Action]:
        while isinstance(step, int):
            self._steps += 1
            if self._steps > self._max_steps:
                step = CLOSING
                break
            question = self.script.questions[step]
            if question.only_if == "unsatisfied" and not self._any_unsatisfied():
                step = next_step(self.script, question.next, step)
            elif question.kind == "say":
                plays.append(self._play(f"questions[{step}].prompt", question.prompt))
                step = next_step(self.script, question.next, step)
            else:
                self._current = step
                self._no_input = self._invalid = 0
                self._keys_only = False
                return self._ask(question, plays)
        if step == HANGUP:
            return self._end([*plays, Hangup()])
        return self._end([*plays, self._play(CLOSING, self.script.closing), Hangup()])

    def _ask(self, question: Question, plays: list[Play]) -> list[Action]:
        prompt = self._play(f"{self._path(question)}.prompt", question.prompt)
        if question.kind == "record":
            return [
                *plays,
                prompt,
                Record(question.id, question.max_seconds, question.silence_seconds),
            ]
        keys = (
            "".join(c.digit for c in question.choices if c.digit) if question.takes_digits else ""
        )
        speech = question.takes_speech and not self._keys_only
        phrases = tuple(p for c in question.choices for p in c.phrases) if speech else ()
        collect = Collect(
            question_id=question.id,
            digits=keys,
            max_digits=1,
            phrases=phrases,
            language=self.script.language.value,
            timeout_seconds=_pick(question.timeout_seconds, self.script.defaults.timeout_seconds),
        )
        return [*(Play(p.prompt, barge_in_digits=keys) for p in [*plays, prompt]), collect]

    def _end(self, actions: list[Action]) -> list[Action]:
        self.finished = True
        self._completed = True
        self._current = None
        return actions

    def _any_unsatisfied(self) -> bool:
        return any(a.outcome == Satisfaction.unsatisfied for a in self._answers)

    # --- prompts ---------------------------------------------------------------------------

    def _retry_prompt(self, question: Question, name: str) -> Play:
        own: PromptText | None = getattr(question, name)
        # validation guarantees one of the two exists for every retry a question can make
        chosen = own if own is not None else getattr(self.script.defaults, name)
        key = f"{self._path(question)}.{name}" if own is not None else f"defaults.{name}"
        return self._play(key, chosen)

    def _path(self, question: Question) -> str:
        return f"questions[{self.script.index_of(question.id)}]"

    def _play(self, key: str, prompt: PromptText) -> Play:
        language = self.script.language.value
        text = render_template(prompt.text_for(language) or "", self._incident)
        return Play(Prompt(key=key, text=text, language=language, audio=prompt.audio))


def _verdict(answers: Sequence[Answer]) -> Satisfaction:
    """The `overall` answer when there is one, else the worst graded answer, else unclear."""
    graded = [
        (a.dimension, a.outcome)
        for a in answers
        if a.outcome is not None and a.outcome in GRADES and a.dimension != "confirm"
    ]
    overall = [outcome for dimension, outcome in graded if dimension == "overall"]
    if overall:
        return overall[-1]
    if graded:
        return max((outcome for _, outcome in graded), key=GRADES.index)
    return Satisfaction.unclear


def _pick(own: T | None, default: T) -> T:
    return default if own is None else own
