"""Prometheus metrics: the database's live counts, read at scrape time, and the in-process
recognizer latency histogram.

Rules kept here:
- nothing is registered at import time: each runtime has its own registry
  (`runtime.metrics`), so two apps in one process (tests) never collide;
- every database figure is one GROUP BY or aggregate query per scrape, read-only (the review
  inbox's count is `followup.review.inbox_count`, the one the dashboard shows);
- the speech pool times each recognition in `runtime.recognizer_latency()`, built in
  `bootstrap` with the registry, so nothing below this module reaches up to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from huifang.bootstrap import Runtime
from huifang.clock import Clock
from huifang.domain.models import CallAttempt, Campaign, Contact, Escalation, Ticket, TrunkSlot
from huifang.domain.states import (
    IN_FLIGHT_ATTEMPT_STATES,
    OPEN_TICKET_STATES,
    CampaignState,
    ContactState,
    EscalationState,
)
from huifang.followup.review import inbox_count

_COLLECTING_KEY = "metrics_database_collector"


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now = self.clock.now()
        with Session(self.engine) as session:
            connection = session.connection()
            by_state = dict(
                connection.execute(
                    select(col(CallAttempt.state), func.count()).group_by(col(CallAttempt.state))
                )
                .tuples()
                .all()
            )
            escalations = dict(
                connection.execute(
                    select(col(Escalation.state), func.count())
                    .where(col(Escalation.state) != EscalationState.resolved.value)
                    .group_by(col(Escalation.state))
                )
                .tuples()
                .all()
            )
            due_contacts = connection.execute(
                select(func.count())
                .select_from(Contact)
                .join(Campaign, col(Campaign.id) == col(Contact.campaign_id))
                .where(col(Campaign.state) == CampaignState.running.value)
                .where(
                    col(Contact.state).in_(
                        (ContactState.pending.value, ContactState.in_progress.value)
                    )
                )
            ).scalar_one()
            open_tickets = [s.value for s in OPEN_TICKET_STATES]
            oldest, open_count, overdue = connection.execute(
                select(
                    func.min(col(Ticket.issued_at)),
                    func.count(),
                    func.count().filter(col(Ticket.deadline_at) < now),
                ).where(col(Ticket.state).in_(open_tickets))
            ).one()
            review_open = inbox_count(session)
            channels = connection.execute(
                select(
                    col(TrunkSlot.trunk),
                    func.count(),
                    func.count().filter(
                        col(TrunkSlot.holder) != "", col(TrunkSlot.expires_at) >= now
                    ),
                ).group_by(col(TrunkSlot.trunk))
            ).all()

        in_flight = GaugeMetricFamily(
            "huifang_calls_in_flight", "Call attempts dialing, ringing or answered right now"
        )
        in_flight.add_metric([], sum(by_state.get(s.value, 0) for s in IN_FLIGHT_ATTEMPT_STATES))
        yield in_flight

        attempts = CounterMetricFamily(
            "huifang_call_attempts", "Call attempts ever made, by current state", labels=["state"]
        )
        for state, count in sorted(by_state.items()):
            attempts.add_metric([state], count)
        yield attempts

        queue = GaugeMetricFamily(
            "huifang_escalation_queue",
            "Escalations waiting for an agent, by state",
            labels=["state"],
        )
        for state in (EscalationState.open, EscalationState.claimed):
            queue.add_metric([state.value], escalations.get(state.value, 0))
        yield queue

        contacts = GaugeMetricFamily(
            "huifang_contacts_to_reach",
            "Contacts of running campaigns not yet answered or given up",
        )
        contacts.add_metric([], due_contacts)
        yield contacts

        tickets = GaugeMetricFamily(
            "huifang_open_tickets", "Supervision tickets not yet rectified", labels=["overdue"]
        )
        tickets.add_metric(["false"], open_count - overdue)
        tickets.add_metric(["true"], overdue)
        yield tickets

        review = GaugeMetricFamily(
            "huifang_review_inbox",
            "Free-text replies no machine settled, waiting for an agent (待研判)",
        )
        review.add_metric([], review_open)
        yield review

        trunk_channels = GaugeMetricFamily(
            "huifang_trunk_channels",
            "Channels of each trunk, and how many a worker holds (leases not lapsed)",
            labels=["trunk", "use"],
        )
        for trunk, total, held in channels:
            trunk_channels.add_metric([trunk, "held"], held)
            trunk_channels.add_metric([trunk, "free"], total - held)
        yield trunk_channels

        age = GaugeMetricFamily(
            "huifang_oldest_open_ticket_age_seconds",
            "Age of the oldest supervision ticket not yet rectified (0 when none)",
        )
        age.add_metric([], _age(oldest, now))
        yield age


def _age(since: datetime | None, now: datetime) -> float:
    if since is None:
        return 0.0
    return max(0.0, (now - since).total_seconds())


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """The runtime's registry, with the database's figures and the recognizer's latency."""
    if runtime.services.get(_COLLECTING_KEY) is None:
        runtime.metrics.register(DatabaseCollector(runtime.engine, runtime.clock))
        runtime.recognizer_latency()  # served (empty) before the first recognition too
        runtime.services[_COLLECTING_KEY] = True
    return runtime.metrics
