"""What the IVR interpreter asks a provider to do.

`Session.start()` and `Session.feed(event)` return a list of actions. A provider executes
them in order; the list ends with at most one *input* action (`Collect` or `Record`) whose
outcome it feeds back as the next event, or with `Hangup`. A `Play` with `barge_in_digits`
may be interrupted by one of those keys: the provider then skips the rest of the list and
feeds `DigitsReceived` at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prompt:
    """A sentence to speak. `key` is stable across renders (e.g. `questions[1].prompt`);
    `audio` is a path to an uploaded recording when the admin supplied one."""

    key: str
    text: str
    language: str
    audio: str | None = None


@dataclass(frozen=True, slots=True)
class Play:
    prompt: Prompt
    barge_in_digits: str = ""


@dataclass(frozen=True, slots=True)
class Collect:
    """Wait for an answer: keys from `digits` (empty = no DTMF) and/or speech matched
    against `phrases` (empty = no speech)."""

    question_id: str
    digits: str
    max_digits: int
    phrases: tuple[str, ...]
    language: str
    timeout_seconds: float

    @property
    def wants_digits(self) -> bool:
        return bool(self.digits)

    @property
    def wants_speech(self) -> bool:
        return bool(self.phrases)


@dataclass(frozen=True, slots=True)
class Record:
    """Record the citizen (a complaint) until `silence_seconds` of silence or `max_seconds`."""

    question_id: str
    max_seconds: int
    silence_seconds: int
    beep: bool = True


@dataclass(frozen=True, slots=True)
class SetVariable:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the citizen to a human agent queue."""

    queue: str


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Action = Play | Collect | Record | SetVariable | Transfer | Hangup
INPUT_ACTIONS = (Collect, Record)
