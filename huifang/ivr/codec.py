"""Plain-JSON forms of IVR events and results, and session replay.

A call attempt stores the events fed to its session (`call_attempts.ivr_log`). The
interpreter is deterministic, so replaying that log through a new `Session` rebuilds the
call in any process: a Twilio webhook landing on another replica, a restarted worker.

Rules this module keeps: every dict names its kind in `"type"`; decoding refuses a kind or
field it does not know (a corrupt log must not replay as a different call); pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from huifang.ivr.actions import Action
from huifang.ivr.events import (
    CallStarted,
    DigitsReceived,
    Event,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.ivr.interpreter import Session, SpeechMatcher
from huifang.ivr.result import SurveyResult
from huifang.ivr.script import Script

_EVENTS: dict[str, type[Event]] = {
    "started": CallStarted,
    "digits": DigitsReceived,
    "speech": SpeechRecognized,
    "recording": RecordingFinished,
    "no_input": NoInput,
    "hung_up": HungUp,
}
_EVENT_NAMES = {kind: name for name, kind in _EVENTS.items()}


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"type": _EVENT_NAMES[type(event)], **dataclasses.asdict(event)}


def event_from_dict(raw: Mapping[str, Any]) -> Event:
    """The event `raw` describes; ValueError when it is not one."""
    fields = dict(raw)
    kind = _EVENTS.get(fields.pop("type", None))
    if kind is None:
        raise ValueError(f"not an IVR event type: {raw.get('type')!r}")
    try:
        return kind(**fields)
    except TypeError as exc:
        raise ValueError(f"bad fields for {raw['type']}: {exc}") from exc


def result_to_dict(result: SurveyResult) -> dict[str, Any]:
    """JSON-ready: enums become their values."""
    return _plain(dataclasses.asdict(result))


def replay(
    script: Script,
    variables: Mapping[str, str],
    log: Iterable[Mapping[str, Any]],
    *,
    speech_matcher: SpeechMatcher | None = None,
) -> tuple[Session, list[Action]]:
    """A session fed the logged events again, and the actions its last event produced
    (what the provider should be doing now)."""
    session = Session(script, variables, speech_matcher=speech_matcher)
    actions: list[Action] = []
    for raw in log:
        actions = session.feed(event_from_dict(raw))
    return session, actions


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)  # StrEnum → its value
    return value
