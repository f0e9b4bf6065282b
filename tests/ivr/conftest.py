"""IVR fixtures: a small valid script to bend into invalid ones, sessions on the built-in
scripts, and a driver that feeds events and keeps what came back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from ivr_support import mini_script_doc

from huifang.ivr.actions import Action
from huifang.ivr.events import Event
from huifang.ivr.interpreter import Session
from huifang.ivr.script import Script, builtin_script, parse_script_mapping
from huifang.ivr.template import sample_variables


@pytest.fixture
def mini_doc() -> dict[str, Any]:
    """A fresh copy of a small valid script as a mapping, to edit into an invalid one."""
    return mini_script_doc()


@pytest.fixture
def make_script() -> Callable[[dict[str, Any]], Script]:
    return parse_script_mapping


@pytest.fixture
def mini(mini_doc: dict[str, Any]) -> Script:
    return parse_script_mapping(mini_doc)


@dataclass
class Call:
    """A session plus every batch of actions it returned, in order."""

    session: Session
    batches: list[list[Action]] = field(default_factory=list)

    def start(self) -> list[Action]:
        return self._keep(self.session.start())

    def feed(self, *events: Event) -> list[Action]:
        actions: list[Action] = []
        for event in events:
            actions = self._keep(self.session.feed(event))
        return actions

    def _keep(self, actions: list[Action]) -> list[Action]:
        self.batches.append(actions)
        return actions

    @property
    def last(self) -> list[Action]:
        return self.batches[-1]


@pytest.fixture
def call() -> Callable[..., Call]:
    """`call(script_or_builtin_name, **variables)` → a started Call."""

    def start(script: Script | str, **variables: str) -> Call:
        chosen = builtin_script(script) if isinstance(script, str) else script
        values = {**sample_variables(chosen.language.value), **variables}
        driven = Call(Session(chosen, values))
        driven.start()
        return driven

    return start
