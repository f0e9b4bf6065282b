"""Recovery of attempts a dead worker left in flight, and a survey continued in a new process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer import claims
from huifang.dialer.survey import make_survey_call_factory
from huifang.domain.models import Answer, CallAttempt
from huifang.errors import Conflict
from huifang.ivr.actions import Collect
from huifang.ivr.events import DigitsReceived
from huifang.telephony.base import CallEvent, CallProgress
from tests.dialer.conftest import (
    CampaignFactory,
    InFlightFactory,
    WorkerFactory,
    db_session,
    phones,
)


def attempts(runtime: Runtime) -> list[CallAttempt]:
    with db_session(runtime) as db:
        return list(db.exec(select(CallAttempt).order_by(CallAttempt.id)))


async def test_in_flight_attempt_is_left_alone_while_its_lease_runs(
    runtime: Runtime, call_in_flight: InFlightFactory, make_worker: WorkerFactory
) -> None:
    phone, _ = call_in_flight("ringing")
    worker, provider = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    assert provider.placed == [] and attempts(runtime)[0].state == "ringing"


async def test_expired_attempt_the_provider_completed_is_recorded_not_redialed(
    runtime: Runtime, clock: FakeClock, call_in_flight: InFlightFactory, make_worker: WorkerFactory
) -> None:
    phone, attempt_id = call_in_flight("answered")
    clock.advance(timedelta(seconds=runtime.settings.lease_seconds + 1))
    worker, provider = make_worker({phone: "satisfied"})

    async def knows_it_completed(asked: int) -> CallEvent | None:
        return CallEvent(asked, CallProgress.completed, clock.now(), "sim-x")

    provider.lookup = knows_it_completed  # type: ignore[method-assign]
    await worker.run_until_idle()
    assert provider.placed == []
    (attempt,) = attempts(runtime)
    assert (attempt.id, attempt.state, attempt.cause) == (attempt_id, "completed", "recovered")


async def test_at_start_a_call_the_provider_saw_end_is_recorded_without_waiting_for_its_lease(
    runtime: Runtime, clock: FakeClock, call_in_flight: InFlightFactory, make_worker: WorkerFactory
) -> None:
    phone, attempt_id = call_in_flight("ringing")
    worker, provider = make_worker({phone: "satisfied"})

    async def rang_out(asked: int) -> CallEvent | None:
        return CallEvent(asked, CallProgress.no_answer, clock.now(), "sim-x", "no_answer")

    provider.lookup = rang_out  # type: ignore[method-assign]
    await worker.run_until_idle()
    assert provider.placed == []
    first = attempts(runtime)[0]
    assert (first.id, first.state, first.cause) == (attempt_id, "no_answer", "no_answer")


async def test_expired_attempt_unknown_to_the_provider_fails_and_is_retried_later(
    runtime: Runtime, clock: FakeClock, call_in_flight: InFlightFactory, make_worker: WorkerFactory
) -> None:
    phone, _ = call_in_flight("dialing")
    clock.advance(timedelta(seconds=runtime.settings.lease_seconds + 1))
    worker, provider = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    assert provider.placed == []  # not redialed on the spot
    failed, retry = attempts(runtime)
    assert (failed.state, failed.cause) == ("failed", "lease_expired")
    assert retry.state == "queued" and retry.due_at == clock.now() + timedelta(minutes=30)


async def test_survey_continues_where_it_was_in_a_new_process(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("ringing")
    first = await make_survey_call_factory(runtime)(attempt_id)
    await first.start()
    await first.feed(DigitsReceived("1"))  # confirm
    asked = await first.feed(DigitsReceived("2"))  # attitude: basically satisfied
    # another replica (a fresh factory: nothing shared) takes the call over
    second = await make_survey_call_factory(runtime)(attempt_id)
    resumed = await second.start()
    assert resumed == asked and isinstance(resumed[-1], Collect)
    assert resumed[-1].question_id == "arrival_time"
    for _ in range(3):
        await second.feed(DigitsReceived("1"))
    assert second.finished
    with db_session(runtime) as db:
        stored = db.exec(
            select(Answer.question_id, Answer.outcome).where(Answer.attempt_id == attempt_id)
        ).all()
    assert dict(stored)["attitude"] == "basically_satisfied" and len(stored) == 5
    assert attempts(runtime)[0].state == "completed"


async def test_stale_survey_object_cannot_extend_a_log_that_moved_on(
    runtime: Runtime, call_in_flight: InFlightFactory
) -> None:
    _, attempt_id = call_in_flight("ringing")
    first = await make_survey_call_factory(runtime)(attempt_id)
    await first.start()
    second = await make_survey_call_factory(runtime)(attempt_id)
    await second.feed(DigitsReceived("1"))
    with pytest.raises(Conflict):
        await first.feed(DigitsReceived("1"))


async def test_call_completed_before_the_survey_started_is_not_redialed(
    runtime: Runtime, clock: FakeClock, call_in_flight: InFlightFactory, make_worker: WorkerFactory
) -> None:
    phone, attempt_id = call_in_flight("ringing")
    worker, _ = make_worker({phone: "satisfied"})
    await worker.on_event(CallEvent(attempt_id, CallProgress.completed, clock.now(), "sim-1"))
    (attempt,) = attempts(runtime)
    assert attempt.state == "completed"


async def test_hang_up_report_mid_survey_leaves_the_ending_to_the_survey(
    runtime: Runtime, clock: FakeClock, call_in_flight: InFlightFactory, make_worker: WorkerFactory
) -> None:
    from huifang.domain.models import Escalation
    from huifang.ivr.events import HungUp

    phone, attempt_id = call_in_flight("ringing")
    survey = await make_survey_call_factory(runtime)(attempt_id)
    await survey.start()
    await survey.feed(DigitsReceived("1"))
    await survey.feed(DigitsReceived("3"))  # attitude: unsatisfied
    worker, _ = make_worker({phone: "satisfied"})
    await worker.on_event(CallEvent(attempt_id, CallProgress.completed, clock.now(), "sim-1"))
    assert attempts(runtime)[0].state == "answered"
    await survey.feed(HungUp())
    assert attempts(runtime)[0].state == "abandoned"
    with db_session(runtime) as db:
        assert db.exec(select(Escalation)).one().attempt_id == attempt_id


async def test_campaign_limit_counts_calls_other_workers_carry(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    make_campaign(phones(5), max_concurrent_calls=2)
    now = runtime.clock.now()
    lease = timedelta(seconds=runtime.settings.lease_seconds)
    with session_scope(runtime.engine) as db:
        claimed = claims.claim_due(db, worker="other", now=now, lease=lease, limit=2)
        assert len(claims.start_dialing(db, claimed, worker="other", now=now, lease=lease)) == 2
    worker, provider = make_worker({})
    await worker.run_until_idle()
    assert provider.placed == []
