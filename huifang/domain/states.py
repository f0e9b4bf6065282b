"""Lifecycles of the business, as transition tables.

Rules kept here:
- a lifecycle is `{state: {event: next_state}}`; `advance(machine, state, event)` is the only
  way to compute a next state and raises IllegalTransition on any move not in the table;
- final states have no outgoing events, so nothing moves an attempt or a ticket backwards
  (a late `ringing` after `completed` is refused, not applied);
- the tables are pure data: the services apply them as guarded
  `UPDATE … WHERE state = :expected` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from huifang.errors import IllegalTransition


class AttemptState(StrEnum):
    queued = "queued"
    dialing = "dialing"
    ringing = "ringing"
    answered = "answered"
    completed = "completed"
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"
    machine = "machine"
    #: answered, then the citizen hung up before the script's end
    abandoned = "abandoned"
    #: never dialed: opted out, window closed for good, campaign stopped
    cancelled = "cancelled"


class AttemptEvent(StrEnum):
    dial = "dial"
    ring = "ring"
    answer = "answer"
    complete = "complete"
    no_answer = "no_answer"
    busy = "busy"
    fail = "fail"
    machine = "machine"
    hang_up_early = "hang_up_early"
    cancel = "cancel"
    #: the provider handed nothing to the network (AMI down): not an attempt, back to queued
    not_sent = "not_sent"


class EscalationState(StrEnum):
    open = "open"
    claimed = "claimed"
    resolved = "resolved"


class EscalationEvent(StrEnum):
    claim = "claim"
    release = "release"  # the agent gave it back, or the claim's lease expired
    defer = "defer"  # citizen unreachable: back to the queue with a retry time
    resolve = "resolve"


class EscalationResolution(StrEnum):
    ticket = "ticket"  # valid complaint: a supervision ticket goes to the unit
    explained = "explained"  # not a service problem, explained to the citizen
    withdrawn = "withdrawn"


class AgentCallOutcome(StrEnum):
    """What an agent's own call to the citizen came to, as the agent records it."""

    reached = "reached"
    no_answer = "no_answer"
    busy = "busy"
    wrong_number = "wrong_number"
    refused = "refused"  # reached, but the citizen would not talk
    failed = "failed"  # the line did not work


class TicketState(StrEnum):
    issued = "issued"
    acknowledged = "acknowledged"
    rectified = "rectified"
    verified = "verified"
    closed = "closed"


class TicketEvent(StrEnum):
    acknowledge = "acknowledge"
    report = "report"  # the unit reports its rectification
    request_more = "request_more"  # an inspector is not convinced by the report
    verify = "verify"  # second callback: the citizen is now satisfied
    reopen = "reopen"  # second callback: still unsatisfied
    close = "close"


class SecondCallbackState(StrEnum):
    """What is stored of a second-callback round; `SecondCallbackProgress` is what people see."""

    open = "open"
    satisfied = "satisfied"  # satisfied or basically satisfied: the ticket is closed
    reopened = "reopened"  # still unsatisfied: the ticket went back to the unit
    cancelled = "cancelled"  # the report was sent back before the citizen answered


class SecondCallbackEvent(StrEnum):
    satisfy = "satisfy"
    reopen = "reopen"
    cancel = "cancel"


class SecondCallbackProgress(StrEnum):
    """A round as the console and the API show it: the stored state, and while it is open,
    where its calls are (read from its contact)."""

    pending = "pending"  # not dialed yet
    calling = "calling"  # dialed at least once, another try planned
    unreachable = "unreachable"  # the calls could not settle it: an agent must call
    satisfied = "satisfied"
    reopened = "reopened"
    cancelled = "cancelled"


class ContactState(StrEnum):
    pending = "pending"  # waiting for its first SMS or call
    in_progress = "in_progress"  # contacted at least once, may be retried
    answered = "answered"  # a usable answer came back (SMS reply or call)
    unreachable = "unreachable"  # attempts exhausted
    excluded = "excluded"  # opted out, do-not-call, not the caller, duplicate phone


class ContactEvent(StrEnum):
    contact = "contact"
    answer = "answer"
    exhaust = "exhaust"
    exclude = "exclude"


class CampaignState(StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    finished = "finished"


class CampaignEvent(StrEnum):
    start = "start"
    pause = "pause"
    resume = "resume"
    finish = "finish"


class SmsState(StrEnum):
    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    received = "received"  # inbound replies


class SmsEvent(StrEnum):
    send = "send"
    deliver = "deliver"
    fail = "fail"


class ReviewState(StrEnum):
    open = "open"  # waiting for an agent to read it
    labelled = "labelled"


class ReviewEvent(StrEnum):
    label = "label"


A, AE = AttemptState, AttemptEvent
_LIVE_ENDS = {AE.no_answer: A.no_answer, AE.busy: A.busy, AE.fail: A.failed, AE.machine: A.machine}

ATTEMPT_TRANSITIONS: Mapping[AttemptState, Mapping[AttemptEvent, AttemptState]] = {
    A.queued: {AE.dial: A.dialing, AE.cancel: A.cancelled, AE.fail: A.failed},
    A.dialing: {AE.ring: A.ringing, AE.answer: A.answered, AE.not_sent: A.queued, **_LIVE_ENDS},
    A.ringing: {AE.answer: A.answered, **_LIVE_ENDS},
    A.answered: {
        AE.complete: A.completed,
        AE.hang_up_early: A.abandoned,
        AE.machine: A.machine,
        AE.fail: A.failed,
    },
    A.completed: {},
    A.no_answer: {},
    A.busy: {},
    A.failed: {},
    A.machine: {},
    A.abandoned: {},
    A.cancelled: {},
}

#: states in which an attempt may still reach a citizen: at most one per contact, ever
LIVE_ATTEMPT_STATES = frozenset({A.queued, A.dialing, A.ringing, A.answered})
#: states a dead worker may leave behind: recovered after the lease expires
IN_FLIGHT_ATTEMPT_STATES = frozenset({A.dialing, A.ringing, A.answered})

E, EE = EscalationState, EscalationEvent
ESCALATION_TRANSITIONS: Mapping[EscalationState, Mapping[EscalationEvent, EscalationState]] = {
    E.open: {EE.claim: E.claimed},
    E.claimed: {EE.release: E.open, EE.defer: E.open, EE.resolve: E.resolved},
    E.resolved: {},
}

T, TE = TicketState, TicketEvent
TICKET_TRANSITIONS: Mapping[TicketState, Mapping[TicketEvent, TicketState]] = {
    T.issued: {TE.acknowledge: T.acknowledged},
    T.acknowledged: {TE.report: T.rectified},
    T.rectified: {
        TE.request_more: T.acknowledged,
        TE.verify: T.verified,
        TE.reopen: T.acknowledged,
    },
    T.verified: {TE.close: T.closed},
    T.closed: {},
}
#: tickets whose deadline still runs
OPEN_TICKET_STATES = frozenset({T.issued, T.acknowledged})

B, BE = SecondCallbackState, SecondCallbackEvent
SECOND_CALLBACK_TRANSITIONS: Mapping[
    SecondCallbackState, Mapping[SecondCallbackEvent, SecondCallbackState]
] = {
    B.open: {BE.satisfy: B.satisfied, BE.reopen: B.reopened, BE.cancel: B.cancelled},
    B.satisfied: {},
    B.reopened: {},
    B.cancelled: {},
}

C, CE = ContactState, ContactEvent
CONTACT_TRANSITIONS: Mapping[ContactState, Mapping[ContactEvent, ContactState]] = {
    C.pending: {CE.contact: C.in_progress, CE.exclude: C.excluded, CE.answer: C.answered},
    C.in_progress: {CE.answer: C.answered, CE.exhaust: C.unreachable, CE.exclude: C.excluded},
    C.answered: {CE.exclude: C.excluded},
    C.unreachable: {CE.exclude: C.excluded},
    C.excluded: {},
}

P, PE = CampaignState, CampaignEvent
CAMPAIGN_TRANSITIONS: Mapping[CampaignState, Mapping[CampaignEvent, CampaignState]] = {
    P.draft: {PE.start: P.running},
    P.running: {PE.pause: P.paused, PE.finish: P.finished},
    P.paused: {PE.resume: P.running, PE.finish: P.finished},
    P.finished: {},
}

S, SE = SmsState, SmsEvent
SMS_TRANSITIONS: Mapping[SmsState, Mapping[SmsEvent, SmsState]] = {
    S.queued: {SE.send: S.sent, SE.fail: S.failed},
    S.sent: {SE.deliver: S.delivered, SE.fail: S.failed},
    S.delivered: {},
    S.failed: {},
    S.received: {},
}

REVIEW_TRANSITIONS: Mapping[ReviewState, Mapping[ReviewEvent, ReviewState]] = {
    ReviewState.open: {ReviewEvent.label: ReviewState.labelled},
    ReviewState.labelled: {},
}


St = TypeVar("St", bound=StrEnum)
Ev = TypeVar("Ev", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Lifecycle(Generic[St, Ev]):
    name: str
    transitions: Mapping[St, Mapping[Ev, St]]

    def advance(self, state: St, event: Ev) -> St:
        """The state after `event`, or IllegalTransition when the table has no such move."""
        try:
            return self.transitions[state][event]
        except KeyError:
            raise IllegalTransition(self.name, str(state), str(event)) from None

    def allows(self, state: St, event: Ev) -> bool:
        return event in self.transitions.get(state, {})

    def sources(self, event: Ev) -> frozenset[St]:
        """Every state from which `event` is allowed: the `WHERE state IN (…)` of a guarded write."""
        return frozenset(s for s, moves in self.transitions.items() if event in moves)

    def is_final(self, state: St) -> bool:
        return not self.transitions[state]


ATTEMPT = Lifecycle("call attempt", ATTEMPT_TRANSITIONS)
ESCALATION = Lifecycle("escalation", ESCALATION_TRANSITIONS)
TICKET = Lifecycle("ticket", TICKET_TRANSITIONS)
CONTACT = Lifecycle("contact", CONTACT_TRANSITIONS)
CAMPAIGN = Lifecycle("campaign", CAMPAIGN_TRANSITIONS)
SMS = Lifecycle("sms", SMS_TRANSITIONS)
REVIEW = Lifecycle("review item", REVIEW_TRANSITIONS)
SECOND_CALLBACK = Lifecycle("second callback", SECOND_CALLBACK_TRANSITIONS)


def second_callback_progress(state: str, contact_state: str) -> SecondCallbackProgress:
    """What a round shows: its settled state, or while open, its contact's progress (a
    contact the calls are done with — exhausted, excluded, answered without a grade —
    leaves the round to an agent)."""
    if state != SecondCallbackState.open:
        return SecondCallbackProgress(state)
    if contact_state == ContactState.pending:
        return SecondCallbackProgress.pending
    if contact_state == ContactState.in_progress:
        return SecondCallbackProgress.calling
    return SecondCallbackProgress.unreachable
