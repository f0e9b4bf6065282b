"""Every (state, event) pair of every lifecycle: allowed moves land where the table says,
every other move is refused, and final states never move again."""

from __future__ import annotations

import itertools

import pytest

from huifang.domain.states import (
    ATTEMPT,
    CAMPAIGN,
    CONTACT,
    ESCALATION,
    REVIEW,
    SECOND_CALLBACK,
    SMS,
    TICKET,
    AttemptEvent,
    AttemptState,
    Lifecycle,
    TicketEvent,
    TicketState,
)
from huifang.errors import IllegalTransition

LIFECYCLES = [ATTEMPT, ESCALATION, TICKET, CONTACT, CAMPAIGN, SMS, SECOND_CALLBACK, REVIEW]


def _pairs(machine: Lifecycle) -> list[tuple[Lifecycle, object, object]]:  # type: ignore[type-arg]
    states = list(machine.transitions)
    events = {event for moves in machine.transitions.values() for event in moves}
    return [(machine, s, e) for s, e in itertools.product(states, sorted(events))]


ALL_PAIRS = [pair for machine in LIFECYCLES for pair in _pairs(machine)]


@pytest.mark.parametrize(
    ("machine", "state", "event"), ALL_PAIRS, ids=lambda v: getattr(v, "name", str(v))
)
def test_every_pair_is_either_applied_as_the_table_says_or_refused(machine, state, event) -> None:  # type: ignore[no-untyped-def]
    allowed = machine.transitions[state]
    if event in allowed:
        assert machine.advance(state, event) == allowed[event]
        assert state in machine.sources(event)
    else:
        with pytest.raises(IllegalTransition, match=str(event)):
            machine.advance(state, event)
        assert state not in machine.sources(event)


def test_the_documented_attempt_path_to_completion() -> None:
    state = AttemptState.queued
    for event in (AttemptEvent.dial, AttemptEvent.ring, AttemptEvent.answer, AttemptEvent.complete):
        state = ATTEMPT.advance(state, event)
    assert state is AttemptState.completed


@pytest.mark.parametrize(
    "final",
    [s for s in AttemptState if ATTEMPT.is_final(s)],
)
def test_a_late_ringing_never_moves_a_finished_attempt_backwards(final: AttemptState) -> None:
    with pytest.raises(IllegalTransition):
        ATTEMPT.advance(final, AttemptEvent.ring)


def test_the_documented_ticket_path_to_closed() -> None:
    state = TicketState.issued
    for event in (
        TicketEvent.acknowledge,
        TicketEvent.report,
        TicketEvent.verify,
        TicketEvent.close,
    ):
        state = TICKET.advance(state, event)
    assert state is TicketState.closed


def test_a_reopened_ticket_goes_back_to_the_unit() -> None:
    assert TICKET.advance(TicketState.rectified, TicketEvent.reopen) is TicketState.acknowledged


def test_every_state_of_every_lifecycle_has_a_row_in_its_table() -> None:
    for machine in LIFECYCLES:
        enum_type = type(next(iter(machine.transitions)))
        assert set(machine.transitions) == set(enum_type), machine.name
