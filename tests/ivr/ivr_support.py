"""Helpers shared by the IVR tests: reading what a batch of actions says and waits for."""

from __future__ import annotations

from collections.abc import Iterable

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
