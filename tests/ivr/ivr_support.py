"""Helpers shared by the IVR tests: a small valid script to bend into invalid ones, and
reading what a batch of actions says and waits for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from huifang.ivr.actions import Action, Collect, Hangup, Play, Record, Transfer
from huifang.ivr.events import DigitsReceived


def texts(actions: Iterable[Action]) -> list[str]:
    return [a.prompt.text for a in actions if isinstance(a, Play)]


def keys(actions: Iterable[Action]) -> list[str]:
    return [a.prompt.key for a in actions if isinstance(a, Play)]


def waiting_for(actions: list[Action]) -> Collect | Record | None:
    last = actions[-1] if actions else None
    return last if isinstance(last, Collect | Record) else None


def ends_call(actions: list[Action]) -> bool:
    return bool(actions) and isinstance(actions[-1], Hangup | Transfer)


def press(keys_in_order: str) -> list[DigitsReceived]:
    """One key press per character: press("113") is 1, then 1, then 3."""
    return [DigitsReceived(key) for key in keys_in_order]


def _grades(*, spoken: bool) -> list[dict[str, Any]]:
    grades: list[dict[str, Any]] = [
        {"digit": "1", "phrases": ["good"], "outcome": "satisfied"},
        {"digit": "2", "phrases": ["okay"], "outcome": "basically_satisfied"},
        {"digit": "3", "phrases": ["bad", "not good"], "outcome": "unsatisfied"},
    ]
    if not spoken:
        for grade in grades:
            del grade["phrases"]
    return grades


def mini_script_doc() -> dict[str, Any]:
    return {
        "name": "mini",
        "language": "en-US",
        "defaults": {
            "no_input_prompt": "Nothing heard.",
            "invalid_prompt": "Not a choice.",
            "low_confidence_prompt": "Use the keys.",
        },
        "greeting": "Hello from {unit_name}.",
        "questions": [
            {
                "id": "attitude",
                "dimension": "attitude",
                "input": "both",
                "prompt": "Attitude?",
                "choices": _grades(spoken=True),
            },
            {
                "id": "handling",
                "dimension": "handling",
                "prompt": "Handling?",
                "choices": _grades(spoken=False),
            },
            {
                "id": "overall",
                "dimension": "overall",
                "prompt": "Overall?",
                "choices": _grades(spoken=False),
            },
            {"id": "reason", "kind": "record", "only_if": "unsatisfied", "prompt": "Why?"},
        ],
        "closing": "Bye.",
        "sms_text": "About {incident_date}: reply 1, 2 or 3.",
    }
