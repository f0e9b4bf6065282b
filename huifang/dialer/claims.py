"""The dialer's SQL, and the only SQL it runs: claiming due attempts, moving them through
their lifecycle with guarded writes, leases, and recovery of attempts a dead worker left.

Rules kept here:
- a claim is a lease on a *queued* attempt (`claimed_by`, `lease_until`), taken in one
  statement: PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED` so workers never wait on
  each other nor take the same row; SQLite (one worker) runs the same guarded UPDATE;
- the claimer then dials, re-plans or cancels the attempt, each a guarded UPDATE that also
  names the claimer: a worker whose lease ran out changes nothing;
- at most one live attempt per contact is the database's job (partial unique index
  `uq_call_attempts_one_live_per_contact`): a retry is inserted only after the previous
  attempt reached a final state, and an insert that collides is dropped, not retried;
- `end_attempt` is idempotent: only the write that moves the attempt to its final state
  updates the contact and schedules the retry; a repeat (provider event after the survey
  ended it, a replayed webhook) finds nothing to move and does nothing;
- the guarded writes of a call's progress do not refresh objects the session holds
  (`synchronize_session=False`): they run on every answered call, and an ending reads
  back what it needs of the attempt with its own write (`RETURNING`);
- on PostgreSQL a batch costs one round trip per step: the claim returns, with each
  attempt, everything the policy reads (the contact's phone and state, the opt-out, the
  phone's contacts within the cap span), and the move to `dialing` counts the contacts'
  attempts in the same statement; these statements are text built once (arrays, not
  IN-lists), prepared by the driver after a few runs. SQLite runs the same steps as
  several plain statements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from huifang.db import locked_batch
from huifang.dialer.policy import DialRules, after_call
from huifang.domain.answers import count_survey
from huifang.domain.models import CallAttempt, Campaign, Contact, OptOut, SmsMessage
from huifang.domain.states import (
    ATTEMPT,
    CONTACT,
    IN_FLIGHT_ATTEMPT_STATES,
    AttemptEvent,
    AttemptState,
    CampaignState,
    ContactEvent,
    ContactState,
)

A = CallAttempt
#: the event that ends an attempt in each final state
_ENDING = {
    AttemptState.completed: AttemptEvent.complete,
    AttemptState.no_answer: AttemptEvent.no_answer,
    AttemptState.busy: AttemptEvent.busy,
    AttemptState.failed: AttemptEvent.fail,
    AttemptState.machine: AttemptEvent.machine,
    AttemptState.abandoned: AttemptEvent.hang_up_early,
}
#: how far back contact history matters: the longest cap span
HISTORY_SPAN = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Claim:
    attempt_id: int
    contact_id: int
    campaign_id: int
    number: int
    phone: str
    contact_state: str
    #: the phone is on the opt-out list
    opted_out: bool = False
    #: when the phone was contacted within `HISTORY_SPAN` (SMS sent, calls dialed), any campaign
    history: tuple[datetime, ...] = ()


_CLAIM_PG = text(
    f"""
    WITH due AS MATERIALIZED (
        SELECT a.id FROM call_attempts a
        WHERE a.state = '{AttemptState.queued}' AND a.due_at <= :now
          AND (a.lease_until IS NULL OR a.lease_until < :now)
          AND a.campaign_id IN (SELECT id FROM campaigns WHERE state = '{CampaignState.running}')
        ORDER BY a.due_at LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE call_attempts a SET claimed_by = :worker, lease_until = :until
    FROM due, contacts c
    WHERE a.id = due.id AND c.id = a.contact_id
    RETURNING a.id, a.contact_id, a.campaign_id, a.number, c.phone, c.state,
        EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = c.phone),
        ARRAY(
            SELECT x.dialed_at FROM call_attempts x JOIN contacts y ON y.id = x.contact_id
            WHERE y.phone = c.phone AND x.dialed_at >= :since
            UNION ALL
            SELECT s.created_at FROM sms_messages s
            WHERE s.phone = c.phone AND s.direction = 'out' AND s.created_at >= :since
        )
    """
)


def claim_due(
    session: Session, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Claim]:
    """Lease up to `limit` queued attempts of running campaigns due by `now`, oldest first,
    with what the policy needs to decide each."""
    if session.get_bind().dialect.name == "postgresql":
        claimed = session.execute(
            _CLAIM_PG,
            {"now": now, "until": now + lease, "worker": worker, "limit": limit,
             "since": now - HISTORY_SPAN},
        ).all()  # fmt: skip
        _expire_attempts_and_contacts(session)
        return [
            Claim(a, c, campaign, number, phone, state, opted, tuple(history))
            for a, c, campaign, number, phone, state, opted, history in claimed
        ]
    picked = locked_batch(
        session,
        select(col(A.id))
        .where(col(A.state) == AttemptState.queued)
        .where(col(A.due_at) <= now)
        .where(or_(col(A.lease_until).is_(None), col(A.lease_until) < now))
        .where(
            col(A.campaign_id).in_(
                select(col(Campaign.id)).where(col(Campaign.state) == CampaignState.running)
            )
        )
        .order_by(col(A.due_at))
        .limit(limit),
        "due",
    )
    rows = session.execute(
        update(A)
        .where(col(A.id) == picked.c.id)
        .values(claimed_by=worker, lease_until=now + lease)
        .returning(col(A.id), col(A.contact_id), col(A.campaign_id), col(A.number))
    ).all()
    if not rows:
        return []
    contacts = {
        cid: (phone, state)
        for cid, phone, state in session.execute(
            select(col(Contact.id), col(Contact.phone), col(Contact.state)).where(
                col(Contact.id).in_([r.contact_id for r in rows])
            )
        )
    }
    phones = [phone for phone, _state in contacts.values()]
    opted = set(
        session.execute(select(col(OptOut.phone)).where(col(OptOut.phone).in_(phones))).scalars()
    )
    history = contact_history(session, phones, now=now)
    return [
        Claim(
            r.id, r.contact_id, r.campaign_id, r.number, phone, state,
            phone in opted, tuple(history.get(phone, ())),
        )
        for r in rows
        for phone, state in (contacts[r.contact_id],)
    ]  # fmt: skip


def _expire_attempts_and_contacts(session: Session) -> None:
    """After a text statement wrote attempts and contacts: objects of them the session holds
    are read again when next used (an ORM UPDATE would have synchronised them)."""
    for held in list(session.identity_map.values()):
        if isinstance(held, CallAttempt | Contact):
            session.expire(held)


#: contacts reached for the first time move from `pending` (`ContactEvent.contact`)
_FIRST_CONTACT = CONTACT.transitions[ContactState.pending][ContactEvent.contact]
_START_DIALING_PG = text(
    f"""
    WITH moved AS (
        UPDATE call_attempts SET state = '{AttemptState.dialing}', dialed_at = :now,
            lease_until = :until
        WHERE id = ANY(:ids) AND state = ANY(:sources) AND claimed_by = :worker
        RETURNING id, contact_id
    ), counted AS (
        UPDATE contacts c SET attempts = c.attempts + 1, updated_at = :now,
            state = CASE WHEN c.state = '{ContactState.pending}' THEN '{_FIRST_CONTACT}'
                         ELSE c.state END
        FROM moved WHERE c.id = moved.contact_id
    )
    SELECT id FROM moved
    """
)


def start_dialing(
    session: Session, claims: Sequence[Claim], *, worker: str, now: datetime, lease: timedelta
) -> list[Claim]:
    """Move claimed attempts to `dialing` (still ours, still queued); count the contact's
    attempt. Returns the claims that moved: only those may be handed to a provider."""
    if not claims:
        return []
    if session.get_bind().dialect.name == "postgresql":
        moved = set(
            session.execute(
                _START_DIALING_PG,
                {"ids": [c.attempt_id for c in claims], "worker": worker, "now": now,
                 "until": now + lease, "sources": sorted(ATTEMPT.sources(AttemptEvent.dial))},
            ).scalars()
        )  # fmt: skip
        _expire_attempts_and_contacts(session)
        return [c for c in claims if c.attempt_id in moved]
    moved = set(
        session.execute(
            update(A)
            .where(col(A.id).in_([c.attempt_id for c in claims]))
            .where(col(A.state).in_(ATTEMPT.sources(AttemptEvent.dial)))
            .where(col(A.claimed_by) == worker)
            .values(state=AttemptState.dialing, dialed_at=now, lease_until=now + lease)
            .returning(col(A.id))
        ).scalars()
    )
    started = [c for c in claims if c.attempt_id in moved]
    if started:
        ids = [c.contact_id for c in started]
        session.execute(
            update(Contact)
            .where(col(Contact.id).in_(ids))
            .values(attempts=col(Contact.attempts) + 1, updated_at=now)
        )
        session.execute(
            update(Contact)
            .where(col(Contact.id).in_(ids))
            .where(col(Contact.state).in_(CONTACT.sources(ContactEvent.contact)))
            .where(col(Contact.state) == ContactState.pending)
            .values(state=ContactState.in_progress)
        )
    return started


def give_back(session: Session, claim: Claim, *, worker: str, now: datetime) -> bool:
    """A call the provider never sent: the attempt goes back to the queue as it was before
    `start_dialing` (not dialled, its contact's count and state restored), so it counts
    toward neither the attempts nor the caps."""
    moved = session.exec(
        update(A)
        .where(col(A.id) == claim.attempt_id)
        .where(col(A.state).in_(ATTEMPT.sources(AttemptEvent.not_sent)))
        .where(col(A.claimed_by) == worker)
        .values(state=AttemptState.queued, dialed_at=None, claimed_by="", lease_until=None)
    )
    if moved.rowcount != 1:
        return False
    contact = update(Contact).where(col(Contact.id) == claim.contact_id)
    session.execute(
        contact.where(col(Contact.attempts) > 0).values(
            attempts=col(Contact.attempts) - 1, updated_at=now
        )
    )
    # `start_dialing` moved a contact nobody had reached yet to in_progress: undo that too
    session.execute(
        contact.where(col(Contact.attempts) == 0)
        .where(col(Contact.sms_sent_at).is_(None))
        .where(col(Contact.state) == ContactState.in_progress)
        .values(state=ContactState.pending)
    )
    return True


def replan(session: Session, claim: Claim, *, worker: str, at: datetime) -> bool:
    """Give a claimed attempt back to the queue, due at `at` (window closed, cap reached)."""
    moved = session.exec(
        update(A)
        .where(col(A.id) == claim.attempt_id)
        .where(col(A.state) == AttemptState.queued)
        .where(col(A.claimed_by) == worker)
        .values(due_at=at, claimed_by="", lease_until=None)
    )
    session.execute(
        update(Contact).where(col(Contact.id) == claim.contact_id).values(next_due_at=at)
    )
    return moved.rowcount == 1


def cancel(session: Session, claim: Claim, *, worker: str, reason: str, now: datetime) -> bool:
    moved = session.exec(
        update(A)
        .where(col(A.id) == claim.attempt_id)
        .where(col(A.state).in_(ATTEMPT.sources(AttemptEvent.cancel)))
        .where(col(A.claimed_by) == worker)
        .values(state=AttemptState.cancelled, cause=reason, ended_at=now, lease_until=None)
    )
    return moved.rowcount == 1


def note_progress(
    session: Session,
    attempt_id: int,
    event: AttemptEvent,
    *,
    now: datetime,
    provider: str = "",
    provider_call_id: str = "",
) -> bool:
    """A non-final step (ring, answer), applied only from a state that allows it."""
    values: dict[str, object] = {"state": _target(event)}
    if event == AttemptEvent.answer:
        values["answered_at"] = now
    if provider_call_id:
        values["provider"], values["provider_call_id"] = provider, provider_call_id
    moved = session.exec(
        update(A)
        .where(col(A.id) == attempt_id)
        .where(col(A.state).in_(ATTEMPT.sources(event)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1


def _target(event: AttemptEvent) -> AttemptState:
    targets = {ATTEMPT.transitions[s][event] for s in ATTEMPT.sources(event)}
    (target,) = targets
    return target


RulesFor = Callable[[int], DialRules]


def end_attempt(
    session: Session,
    attempt_id: int,
    outcome: AttemptState,
    *,
    now: datetime,
    rules_for: RulesFor,
    cause: str = "",
    contact_outcome: str | None = None,
) -> bool:
    """End a live attempt with `outcome`, then answer, exhaust or re-queue its contact; a
    completed call's answers are counted (`domain.answers`). False (and nothing written)
    when the attempt had already ended."""
    event = _ENDING[outcome]
    ended = session.execute(
        update(A)
        .where(col(A.id) == attempt_id)
        .where(col(A.state).in_(ATTEMPT.sources(event)))
        .values(state=outcome, outcome=outcome, cause=cause[:64], ended_at=now, lease_until=None)
        .returning(
            col(A.contact_id),
            col(A.campaign_id),
            col(A.number),
            col(A.purpose),
            col(A.script_version_id),
        )
        .execution_options(synchronize_session=False)
    ).first()
    if ended is None:
        return False
    if outcome == AttemptState.completed:
        count_survey(session, now=now, attempt_id=attempt_id)
    step = after_call(
        rules_for(ended.campaign_id), outcome=outcome, attempts_made=ended.number, ended_at=now
    )
    contact_values: dict[str, object] = {
        "outcome": contact_outcome or outcome,
        "updated_at": now,
        "next_due_at": step.retry_at,
    }
    contact = update(Contact).where(col(Contact.id) == ended.contact_id)
    if step.contact_event is not None:
        contact_values["state"] = CONTACT.transitions[ContactState.in_progress][step.contact_event]
        contact = contact.where(col(Contact.state).in_(CONTACT.sources(step.contact_event)))
    else:
        contact = contact.where(col(Contact.state) == ContactState.in_progress)
    contact = contact.values(**contact_values).execution_options(synchronize_session=False)
    still_open = session.exec(contact).rowcount == 1
    if step.retry_at is not None and still_open:
        _queue_retry(session, ended, step.retry_at, now)
    return True


def _queue_retry(session: Session, previous: Row[Any], due_at: datetime, now: datetime) -> None:
    """The next attempt on `previous`'s contact (the columns `end_attempt` read back)."""
    retry = CallAttempt(
        contact_id=previous.contact_id,
        campaign_id=previous.campaign_id,
        number=previous.number + 1,
        purpose=previous.purpose,
        script_version_id=previous.script_version_id,
        due_at=due_at,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(retry)
    except IntegrityError:
        # another live attempt exists for this contact already: it is the retry
        session.expunge(retry)


# --- leases and recovery -------------------------------------------------------------------


def renew_leases(
    session: Session, attempt_ids: Iterable[int], *, worker: str, until: datetime
) -> int:
    ids = list(attempt_ids)
    if not ids:
        return 0
    result = session.exec(
        update(A)
        .where(col(A.id).in_(ids))
        .where(col(A.claimed_by) == worker)
        .where(col(A.state).in_(IN_FLIGHT_ATTEMPT_STATES))
        .values(lease_until=until)
    )
    return int(result.rowcount or 0)


def in_flight(session: Session, limit: int = 10_000) -> list[int]:
    """Every attempt in flight, whoever placed it, oldest first."""
    return list(
        session.execute(
            select(col(A.id))
            .where(col(A.state).in_(IN_FLIGHT_ATTEMPT_STATES))
            .order_by(col(A.id))
            .limit(limit)
        ).scalars()
    )


@dataclass(frozen=True, slots=True)
class Stale:
    attempt_id: int
    state: str
    previous_worker: str


def take_over_expired(
    session: Session, *, worker: str, now: datetime, lease: timedelta, limit: int = 100
) -> list[Stale]:
    """In-flight attempts whose worker's lease ran out, now leased to `worker` for recovery."""
    picked = locked_batch(
        session,
        select(col(A.id))
        .where(col(A.state).in_(IN_FLIGHT_ATTEMPT_STATES))
        .where(col(A.lease_until) < now)
        .limit(limit),
        "expired",
    )
    stale = session.execute(
        select(col(A.id), col(A.state), col(A.claimed_by)).where(col(A.id) == picked.c.id)
    ).all()
    taken = []
    for attempt_id, state, previous in stale:
        moved = session.exec(
            update(A)
            .where(
                and_(col(A.id) == attempt_id, col(A.state) == state, col(A.claimed_by) == previous)
            )
            .values(claimed_by=worker, lease_until=now + lease)
        )
        if moved.rowcount == 1:
            taken.append(Stale(attempt_id, state, previous))
    return taken


# --- what the policy needs to know -----------------------------------------------------------


def contact_history(
    session: Session, phones: Sequence[str], *, now: datetime
) -> dict[str, list[datetime]]:
    """When each phone was contacted within the cap span: SMS sent and calls dialed."""
    history: dict[str, list[datetime]] = defaultdict(list)
    if not phones:
        return history
    since = now - HISTORY_SPAN
    calls = (
        select(col(Contact.phone), col(A.dialed_at))
        .join(Contact, col(Contact.id) == col(A.contact_id))
        .where(col(Contact.phone).in_(phones))
        .where(col(A.dialed_at) >= since)
    )
    texts = (
        select(col(SmsMessage.phone), col(SmsMessage.created_at))
        .where(col(SmsMessage.phone).in_(phones))
        .where(col(SmsMessage.direction) == "out")
        .where(col(SmsMessage.created_at) >= since)
    )
    for query in (calls, texts):
        for phone, at in session.execute(query):
            history[phone].append(at)
    return history


def in_flight_by_campaign(session: Session, campaign_ids: Sequence[int]) -> dict[int, int]:
    """Calls in flight per campaign, across every worker. On PostgreSQL the campaigns' rows
    are locked until the caller commits, so workers deciding for the same limited campaign
    take turns and never overshoot its limit together."""
    if not campaign_ids:
        return {}
    ids = sorted(set(campaign_ids))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(col(Campaign.id)).where(col(Campaign.id).in_(ids)).with_for_update())
    rows = session.execute(
        select(col(A.campaign_id), func.count())
        .where(col(A.campaign_id).in_(ids))
        .where(col(A.state).in_(IN_FLIGHT_ATTEMPT_STATES))
        .group_by(col(A.campaign_id))
    ).all()
    counts = dict.fromkeys(ids, 0)
    counts.update({campaign_id: int(n) for campaign_id, n in rows})
    return counts


def load_campaigns(session: Session, campaign_ids: Iterable[int]) -> dict[int, Campaign]:
    ids = list(set(campaign_ids))
    rows = session.execute(select(Campaign).where(col(Campaign.id).in_(ids))).scalars()
    return {c.id: c for c in rows if c.id is not None}
