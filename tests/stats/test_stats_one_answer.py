"""One answer per incident and dimension, from the latest completed survey of its citizen:
the figures of a survey history made by the real campaign, dialer, SMS and ticket code
(survey_history.py), computed by hand; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.answers import count_survey
from huifang.domain.models import Answer, CallAttempt, Contact
from huifang.stats.figures import Figures, Grades
from huifang.stats.queries import summary
from tests.stats.survey_history import PERIOD, RETRIED, History


def figures(runtime: Runtime, now: datetime, unit_id: int | None = None) -> Figures:
    with Session(runtime.engine) as session:
        return summary(session, PERIOD, tz=runtime.settings.tz, now=now, unit_id=unit_id)


def test_every_citizen_surveyed_counts_once(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    city = figures(runtime, clock.now())
    # eight incidents; the one surveyed by two campaigns is one surveyed citizen, the one on
    # the do-not-call list none
    assert (city.incidents, city.surveyed) == (8, 7)


def test_answered_counts_completed_surveys_only(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    # everyone but the answering machine, whose three calls never completed
    assert figures(runtime, clock.now()).answered == 6


def test_the_latest_completed_survey_gives_each_verdict(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    city = figures(runtime, clock.now())
    # surveyed again: basically satisfied (not the first survey's satisfied); the late SMS
    # reply "3" replaces its call's satisfied; the retried call counts its retry's answer
    assert city.overall == Grades(satisfied=2, basically_satisfied=2, unsatisfied=2)


def test_a_question_answered_before_a_call_was_cut_short_counts_once(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    with Session(runtime.engine) as session:
        given = session.execute(
            select(func.count())
            .select_from(Answer)
            .join(Contact, col(Contact.id) == col(Answer.contact_id))
            .where(col(Contact.phone) == RETRIED, col(Answer.dimension) == "attitude")
        ).scalar_one()
    assert given == 2  # both calls stored it
    # five calls answered attitude to the end: the retry's satisfied counts, not the
    # cut-short call's; the SMS-only citizen was never asked
    assert figures(runtime, clock.now()).attitude == Grades(
        satisfied=2, basically_satisfied=2, unsatisfied=1
    )


def test_a_re_survey_counts_at_its_own_station_once(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    again = figures(runtime, clock.now(), history.resurveyed_station.id)
    assert (again.surveyed, again.answered) == (1, 1)
    assert again.handling == Grades(basically_satisfied=1)


def test_the_latest_second_callback_gives_the_second_callback_rate(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    city = figures(runtime, clock.now())
    # the complainer: still unsatisfied at the first second callback (reopened), satisfied
    # at the next; the late SMS complainer satisfied at once
    assert (city.second_callback, city.second_callback.rate) == (Grades(satisfied=2), 1.0)
    assert (city.tickets_issued, city.tickets_reopened, city.tickets_closed) == (2, 1, 2)
    assert (city.tickets_on_time, city.tickets_overdue) == (1, 1)


def test_counting_a_survey_again_changes_nothing(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    before = figures(runtime, clock.now())
    with Session(runtime.engine) as session:
        attempts = session.execute(
            select(col(CallAttempt.id)).where(col(CallAttempt.state) == "completed")
        ).scalars()
        newly = [count_survey(session, now=clock.now(), attempt_id=a) for a in attempts]
        session.commit()
    assert set(newly) == {0}
    assert figures(runtime, clock.now()) == before


def test_an_older_survey_counted_late_leaves_the_newer_one_counted(
    runtime: Runtime, clock: FakeClock, history: History
) -> None:
    before = figures(runtime, clock.now())
    with Session(runtime.engine) as session:
        first, retry = session.execute(
            select(col(CallAttempt.id))
            .join(Contact, col(Contact.id) == col(CallAttempt.contact_id))
            .where(col(Contact.phone) == RETRIED)
            .order_by(col(CallAttempt.id))
        ).scalars()
        # as if the cut-short call had been recorded as completed after the retry: each of
        # its answers (confirm, attitude) has a newer counted one
        assert count_survey(session, now=clock.now(), attempt_id=first) == 0
        session.commit()
    assert figures(runtime, clock.now()).attitude == before.attitude


def test_count_survey_needs_exactly_one_survey(session: Session, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="attempt_id and sms_id"):
        count_survey(session, now=clock.now())
