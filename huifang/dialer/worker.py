"""The dialer worker (`huifang worker`): claims due attempts, hands them to the provider,
follows every call to its end, records the outcome and lets the policy plan the retry.

Rules kept here:
- the decision to dial is taken at the moment of dialing, in the same transaction that
  moves the attempt to `dialing`: the window, the caps, opt-outs and the contact's state are
  read then, not when the work was queued;
- never more calls than the trunk's channels, counted across every worker on every host:
  a call is placed only on a channel leased from the database (`dialer.trunks`) in the
  transaction that moves its attempt to `dialing`, and the channel is given back once the
  call has ended; the leases are renewed every `trunk_heartbeat_seconds` and lapse after
  `trunk_lease_seconds` without renewal (a killed worker's channels come back by then);
- never more calls than a campaign's own limit, and never more new calls per second than
  the trunk's `calls_per_second` from this worker (a token bucket on real time: the
  trunk's limit is physical even when the demo's clock is not);
- an attempt is committed as `dialing` before the provider is asked to call, so a crash in
  between leaves a leased attempt that recovery ends (never redials blindly); an attempt
  whose fate the provider cannot tell (`CallFateUnknown`) is left to recovery too;
- recovery asks the provider (`lookup`) what became of an expired attempt: a call it knows
  ended is recorded with that outcome; one it does not know ends as failed and is retried
  by the policy after the failure delay; at start-up the worker also asks about every call
  in flight, so a call a previous run left ringing is followed to its real end at once;
- a call the provider never sent (`CallNotPlaced`: AMI down) is not an attempt: it goes
  back to the queue as it was; while the provider is not ready nothing is claimed;
- every state change of an attempt is one log line (`logs.attempt_changed`);
- every piece of database work is retried after a transient error (`db.retry_transient`):
  a dropped connection never loses a call's outcome nor stops the worker;
- about once a minute the worker also runs the follow-up sweep (expired agent claims,
  imported complaints, overdue tickets), writing the worker's heartbeat (which the console
  reads) in the same transaction; then it sends the units' notices queued for their duty
  phones and refreshes the dashboard's precomputed figures
  (`stats.queries.refresh_snapshots`): all are idempotent, so every worker may run them;
- once a day (and when it starts) it runs the retention purge (`huifang.privacy`), also
  idempotent and safe to run from every worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.db import is_transient, retry_transient, session_scope
from huifang.dialer import claims, trunks
from huifang.dialer.policy import ChannelLimits, DialRules, TokenBucket, Verdict, decide_dial
from huifang.domain.states import ATTEMPT, AttemptEvent, AttemptState
from huifang.domain.workers import beat
from huifang.followup.notifications import queued_notice_sms
from huifang.followup.sweep import sweep
from huifang.logs import attempt_changed
from huifang.privacy.retention import RetentionPolicy, purge
from huifang.sms.registry import process_gateway
from huifang.sms.survey import send_queued_sms
from huifang.stats.queries import refresh_snapshots
from huifang.telephony.base import (
    CallEvent,
    CallFateUnknown,
    CallNotPlaced,
    CallProgress,
    OriginateRequest,
    TelephonyProvider,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: seconds between two follow-up sweeps of one worker
SWEEP_INTERVAL = 60.0
#: seconds between two retention purges of one worker
PURGE_INTERVAL = 24 * 3600.0

_PROGRESS_EVENTS = {
    CallProgress.ringing: AttemptEvent.ring,
    CallProgress.answered: AttemptEvent.answer,
}


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerStats:
    claimed: int = 0
    dialed: int = 0
    replanned: int = 0
    cancelled: int = 0
    ended: int = 0
    recovered: int = 0
    #: the most channels in use at once
    peak_channels: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class DialerWorker:
    def __init__(
        self,
        runtime: Runtime,
        provider: TelephonyProvider,
        *,
        name: str | None = None,
        batch: int = 100,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`monotonic` and `sleep` pace the calls; a simulation passes its own clock's."""
        settings = runtime.settings
        self.runtime = runtime
        self.provider = provider
        self.name = name or worker_name()
        self.batch = batch
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.trunk = settings.dial_trunk
        self.channel_lease = timedelta(seconds=settings.trunk_lease_seconds)
        self.limits = ChannelLimits(min(provider.max_channels, self.trunk.channels))
        self.bucket = TokenBucket(self.trunk.calls_per_second)
        self.stats = WorkerStats()
        self._monotonic = monotonic
        self._sleep = sleep
        self._live: dict[int, int] = {}  # attempt id → campaign id
        self._slot_of: dict[int, int] = {}  # attempt id → the trunk slot its call holds
        self._freed: list[int] = []  # slots whose calls ended, to give back
        self._next_heartbeat = 0.0
        #: the last pass found every channel of the trunk taken (by other workers too)
        self.trunk_full = False
        self._rules: dict[int, DialRules] = {}
        self._changed = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None
        self._next_sweep = 0.0
        self._waiting_said = False
        self._reconciled = False
        self._next_purge = 0.0

    # --- loops ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
        """Dial until `stop` is set, then let live calls finish."""
        await self._start()
        while not stop.is_set():
            try:
                await self.step()
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                # the database stayed out of reach beyond the retries: the calls in flight
                # go on, and the next pass tries again
                log.error("worker pass: the database is out of reach (%s)", exc.orig)
            await self.sweep_if_due()
            await self.purge_if_due()
            self._changed.clear()
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._changed.wait()),
            ]
            await asyncio.wait(waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        await self.drain()
        await self.close()

    async def sweep_if_due(self) -> None:
        """Run the follow-up sweep when a minute has passed since the last one."""
        if self._monotonic() < self._next_sweep:
            return
        self._next_sweep = self._monotonic() + SWEEP_INTERVAL

        def run_sweep() -> None:
            with session_scope(self.runtime.engine) as session:
                now = self.runtime.clock.now()
                report = sweep(session, now=now, settings=self.runtime.settings)
                beat(session, self.name, now)
            if report.released_claims or report.opened_escalations or report.overdue_tickets:
                log.info("follow-up sweep: %s", report)
            # the dashboard's figures, precomputed in a transaction of their own
            with session_scope(self.runtime.engine) as session:
                refresh_snapshots(
                    session, tz=self.runtime.settings.tz, now=self.runtime.clock.now()
                )

        try:
            await asyncio.to_thread(run_sweep)
            await self.send_notices()
        except Exception:  # the dialer must keep dialing; the next sweep tries again
            log.exception("follow-up sweep failed")

    async def send_notices(self) -> None:
        """Hand the units' queued notices (to their duty phones) to the SMS gateway."""

        def queued() -> list[int]:
            with session_scope(self.runtime.engine) as session:
                return queued_notice_sms(session)

        for sms_id in await asyncio.to_thread(queued):
            await send_queued_sms(self.runtime, process_gateway(self.runtime), sms_id)

    async def purge_if_due(self) -> None:
        """Run the retention purge when a day has passed since the last one."""
        if self._monotonic() < self._next_purge:
            return
        self._next_purge = self._monotonic() + PURGE_INTERVAL
        policy = RetentionPolicy.from_settings(self.runtime.settings)
        try:
            report = await asyncio.to_thread(
                purge, self.runtime.engine, self.runtime.clock.now(), policy
            )
        except Exception:  # the dialer must keep dialing; tomorrow's purge tries again
            log.exception("retention purge failed")
            return
        if report.removed_anything:
            log.info("retention purge: %s", report)

    async def run_until_idle(self) -> None:
        """Dial everything due now and wait for those calls to end (the demo's driver)."""
        await self._start()
        while True:
            dialed = await self.step()
            await self.drain()
            if not dialed and not self.trunk_full:
                return
            if not dialed:  # other workers hold every channel: wait for one to come back
                await asyncio.sleep(0.01)

    async def drain(self) -> None:
        while self._live:
            self._changed.clear()
            await self._changed.wait()
        if self._freed:
            await self._db(self._keep_channels)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None

    async def _start(self) -> None:
        if self._follower is None:
            await self.provider.start()
            self._follower = asyncio.create_task(self._follow_events())

    # --- one pass ----------------------------------------------------------------------------

    async def step(self) -> int:
        """Recover expired leases, renew ours, and fill the free channels. Returns calls placed."""
        if not self._provider_ready():
            if self._live or self._freed:
                await self._db(self._renew)
            return 0
        if not self._reconciled:
            await self._db(self._ensure_slots)
            self._reconciled = True
            await self._reconcile_in_flight()
        await self._recover()
        if self._live:
            await self._db(self._renew)
        free = self.limits.channels - self.limits.in_use
        if free <= 0:
            if self._freed:
                await self._db(self._keep_channels)
            return 0
        started = await self._db(self._claim_and_decide, min(free, self.batch))
        for claim in started:
            await self._dial(claim)
        return len(started)

    async def _db(self, work: Callable[..., T], *args: Any) -> T:
        """Database work off the event loop, tried again after a transient error (each
        piece of the worker's work is a guarded write or a lease: safe to run again)."""
        return await asyncio.to_thread(
            retry_transient, lambda _try: work(*args), what=f"worker: {work.__name__}"
        )

    def _provider_ready(self) -> bool:
        """Whether calls may be placed; says once when they may not (and when again)."""
        ready = self.provider.ready
        if ready == self._waiting_said:
            self._waiting_said = not ready
            if ready:
                log.info("the %s provider is ready: placing calls", self.provider.name)
            else:
                log.warning(
                    "waiting for the %s provider: no call is placed until it is ready",
                    self.provider.name,
                )
        return ready

    def _renew(self) -> None:
        with session_scope(self.runtime.engine) as db:
            claims.renew_leases(
                db, self._live, worker=self.name, until=self.runtime.clock.now() + self.lease
            )
            given_back = self._keep_channels_in(db)
        del self._freed[:given_back]

    def _ensure_slots(self) -> None:
        with session_scope(self.runtime.engine) as db:
            trunks.ensure_slots(db, self.trunk.name, self.trunk.channels)

    def _keep_channels(self) -> None:
        with session_scope(self.runtime.engine) as db:
            given_back = self._keep_channels_in(db)
        del self._freed[:given_back]

    def _keep_channels_in(self, db: Session) -> int:
        """Give back the channels of ended calls; renew the others when a heartbeat is due.
        Returns how many of `_freed` (from its start) were given back: the caller drops them
        once the transaction committed (calls that end meanwhile are appended)."""
        freed = list(self._freed)
        trunks.release(db, self.trunk.name, freed, worker=self.name)
        if self._slot_of and self._monotonic() >= self._next_heartbeat:
            self._next_heartbeat = self._monotonic() + self.runtime.settings.trunk_heartbeat_seconds
            until = self.runtime.clock.now() + self.channel_lease
            mine = set(self._slot_of.values())
            kept = trunks.renew(db, self.trunk.name, mine, worker=self.name, until=until)
            if kept != mine:
                # this worker was out of reach past the lease: another took those channels,
                # and the trunk carries more calls than it has until these end
                log.error("trunk %s: channels %s lapsed while their calls were up",
                          self.trunk.name, sorted(mine - kept))  # fmt: skip
        return len(freed)

    def _claim_and_decide(self, limit: int) -> list[claims.Claim]:
        """In one transaction: give back the channels of ended calls, lease free channels of
        the trunk, claim as many due attempts, let the policy decide each, move those to dial
        to `dialing` on a channel each, and give back the channels left over."""
        now = self.runtime.clock.now()
        with session_scope(self.runtime.engine) as db:
            given_back = self._keep_channels_in(db)
            slots = trunks.acquire(
                db, self.trunk.name, channels=self.trunk.channels, worker=self.name, now=now,
                until=now + self.channel_lease, want=limit, carrying=list(self._slot_of.values()),
            )  # fmt: skip
            self.trunk_full = not slots
            started = self._decide(db, now, slots)
            trunks.release(db, self.trunk.name, slots[len(started) :], worker=self.name)
        del self._freed[:given_back]
        self._slot_of.update(zip((c.attempt_id for c in started), slots, strict=False))
        for claim in started:
            attempt_changed(log, claim.attempt_id, AttemptState.dialing)
        return started

    def _decide(self, db: Session, now: datetime, slots: list[int]) -> list[claims.Claim]:
        """Claim one due attempt per leased channel and decide each: the ones that dial."""
        if not slots:
            return []
        claimed = claims.claim_due(
            db, worker=self.name, now=now, lease=self.lease, limit=len(slots)
        )
        if not claimed:
            return []
        self.stats.claimed += len(claimed)
        campaigns = claims.load_campaigns(db, {c.campaign_id for c in claimed})
        for campaign in campaigns.values():
            assert campaign.id is not None
            self._rules[campaign.id] = DialRules.from_campaign(
                campaign.rules, self.runtime.settings
            )
            self.limits.limit_campaign(campaign.id, campaign.max_concurrent_calls)
        # a campaign's own limit holds across workers: count its calls in the database
        limited = [c.id for c in campaigns.values() if c.max_concurrent_calls and c.id]
        in_flight = claims.in_flight_by_campaign(db, limited)
        room = {
            cid: min(self.limits.free_for(cid), (campaigns[cid].max_concurrent_calls or 0) - n)
            for cid, n in in_flight.items()
        }
        to_dial: list[claims.Claim] = []
        planned: dict[int, int] = {}
        for claim in claimed:
            decision = decide_dial(
                self._rules[claim.campaign_id],
                now=now,
                contact_state=claim.contact_state,
                opted_out=claim.opted_out,
                history=claim.history,
            )
            taken = planned.get(claim.campaign_id, 0)
            free = room.get(claim.campaign_id, self.limits.free_for(claim.campaign_id))
            if decision.verdict == Verdict.dial and taken >= free:
                decision = type(decision)(Verdict.replan, now, "campaign_channels_busy")
            if decision.verdict == Verdict.cancel:
                if claims.cancel(db, claim, worker=self.name, reason=decision.reason, now=now):
                    attempt_changed(log, claim.attempt_id, AttemptState.cancelled, decision.reason)
                self.stats.cancelled += 1
            elif decision.verdict == Verdict.replan:
                assert decision.at is not None
                claims.replan(db, claim, worker=self.name, at=decision.at)
                self.stats.replanned += 1
            else:
                planned[claim.campaign_id] = taken + 1
                to_dial.append(claim)
        return claims.start_dialing(db, to_dial, worker=self.name, now=now, lease=self.lease)

    async def _dial(self, claim: claims.Claim) -> None:
        self.limits.acquire(claim.campaign_id)
        self._live[claim.attempt_id] = claim.campaign_id
        self.stats.peak_channels = max(self.stats.peak_channels, self.limits.in_use)
        wait = self.bucket.take(self._monotonic())
        while wait > 0:
            await self._sleep(wait)
            wait = self.bucket.take(self._monotonic())
        request = OriginateRequest(
            attempt_id=claim.attempt_id,
            phone=claim.phone,
            ring_timeout_seconds=self.runtime.settings.ring_timeout_seconds,
        )
        try:
            await self.provider.originate(request)
        except CallNotPlaced as exc:
            await self._db(self._give_back, claim)
            attempt_changed(log, claim.attempt_id, AttemptState.queued, f"not sent: {exc}",
                            level=logging.WARNING)  # fmt: skip
            self._forget(claim.attempt_id)
            return
        except CallFateUnknown:
            log.warning(
                "attempt %s: call fate unknown; lease recovery will settle it", claim.attempt_id
            )
            self._forget(claim.attempt_id, call_ended=False)
            return
        except Exception as exc:
            log.exception("attempt %s: the provider refused the call", claim.attempt_id)
            await self._db(self._end, claim.attempt_id, AttemptState.failed, str(exc))
            self._forget(claim.attempt_id)
            return
        self.stats.dialed += 1

    def _give_back(self, claim: claims.Claim) -> None:
        with session_scope(self.runtime.engine) as db:
            claims.give_back(db, claim, worker=self.name, now=self.runtime.clock.now())

    # --- call events -----------------------------------------------------------------------

    async def _follow_events(self) -> None:
        async for event in self.provider.events():
            try:
                await self.on_event(event)
            except Exception:
                log.exception("attempt %s: could not record %s", event.attempt_id, event.progress)

    async def on_event(self, event: CallEvent) -> None:
        if event.progress == CallProgress.completed:
            await self._db(self._completed, event.attempt_id, event.cause, False)
            self._forget(event.attempt_id)
        elif event.progress.is_final:
            await self._db(self._end, event.attempt_id, AttemptState(event.progress), event.cause)
            self._forget(event.attempt_id)
        else:
            await self._db(
                self._note, event.attempt_id, _PROGRESS_EVENTS[event.progress],
                event.provider_call_id,
            )  # fmt: skip

    def _completed(self, attempt_id: int, cause: str, recovering: bool) -> None:
        """The provider says the call was connected and has ended. An answered call's survey
        ends the attempt itself (with what the citizen said); the worker ends it only when
        the survey never started, or, in recovery, never finished: a completed call is
        recorded as completed, never redialed."""
        now = self.runtime.clock.now()
        with session_scope(self.runtime.engine) as db:
            connected_now = claims.note_progress(db, attempt_id, AttemptEvent.answer, now=now)
            if (connected_now or recovering) and claims.end_attempt(
                db, attempt_id, AttemptState.completed, now=now,
                rules_for=lambda cid: self._rules_for(db, cid), cause=cause,
            ):  # fmt: skip
                attempt_changed(log, attempt_id, AttemptState.completed, cause)

    def _note(self, attempt_id: int, event: AttemptEvent, call_id: str) -> None:
        """Ringing or answered; the provider's call id is recorded with the first of them."""
        with session_scope(self.runtime.engine) as db:
            if claims.note_progress(
                db, attempt_id, event, now=self.runtime.clock.now(),
                provider=self.provider.name, provider_call_id=call_id,
            ):  # fmt: skip
                attempt_changed(log, attempt_id, ATTEMPT.advance(AttemptState.dialing, event))

    def _end(self, attempt_id: int, outcome: AttemptState, cause: str) -> None:
        with session_scope(self.runtime.engine) as db:
            if claims.end_attempt(
                db, attempt_id, outcome, now=self.runtime.clock.now(),
                rules_for=lambda cid: self._rules_for(db, cid), cause=cause,
            ):  # fmt: skip
                level = logging.WARNING if outcome == AttemptState.failed else logging.INFO
                attempt_changed(log, attempt_id, outcome, cause, level=level)
                self.stats.ended += 1
                self.stats.by_outcome[outcome] = self.stats.by_outcome.get(outcome, 0) + 1

    def _rules_for(self, db: Session, campaign_id: int) -> DialRules:
        if campaign_id not in self._rules:
            campaign = claims.load_campaigns(db, [campaign_id])[campaign_id]
            self._rules[campaign_id] = DialRules.from_campaign(
                campaign.rules, self.runtime.settings
            )
        return self._rules[campaign_id]

    def _forget(self, attempt_id: int, *, call_ended: bool = True) -> None:
        """Stop following an attempt. The channel of a call that ended is given back at the
        next pass; one whose call may still be up is left to lapse (`trunk_lease_seconds`)."""
        campaign_id = self._live.pop(attempt_id, None)
        if campaign_id is not None:
            self.limits.release(campaign_id)
        slot = self._slot_of.pop(attempt_id, None)
        if slot is not None and call_ended:
            self._freed.append(slot)
        self._changed.set()

    # --- recovery ----------------------------------------------------------------------------

    async def _recover(self) -> None:
        stale = await self._db(self._take_over)
        for attempt in stale:
            if attempt.attempt_id in self._live:
                continue  # our own call outlived a lease renewal: it is still followed
            known = await self.provider.lookup(attempt.attempt_id)
            if known is not None and known.progress == CallProgress.completed:
                await self._db(self._completed, attempt.attempt_id, "recovered", True)
                self.stats.recovered += 1
                continue
            if known is not None and known.progress.is_final:
                outcome, cause = AttemptState(known.progress), "recovered:" + known.cause
            elif known is not None:
                continue  # the provider still carries it: its final event will end it
            elif attempt.state == AttemptState.answered:
                outcome, cause = AttemptState.abandoned, "lease_expired"
            else:
                outcome, cause = AttemptState.failed, "lease_expired"
            await self._db(self._end, attempt.attempt_id, outcome, cause)
            self.stats.recovered += 1

    async def _reconcile_in_flight(self) -> None:
        """Once the provider is first ready: the calls in flight that this worker did not
        place (a previous run's, another worker's). The provider follows those it still carries, so their
        end is recorded when it comes, and tells how those it knows ended, ended."""
        for attempt_id in await self._db(self._in_flight):
            known = await self.provider.lookup(attempt_id)
            if known is not None and known.progress.is_final:
                await self.on_event(known)

    def _in_flight(self) -> list[int]:
        with session_scope(self.runtime.engine) as db:
            return claims.in_flight(db)

    def _take_over(self) -> list[claims.Stale]:
        with session_scope(self.runtime.engine) as db:
            return claims.take_over_expired(
                db, worker=self.name, now=self.runtime.clock.now(), lease=self.lease
            )
