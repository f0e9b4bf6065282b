"""The statistics against figures computed by hand on the fixed data set (stats_dataset.py),
on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from huifang.domain.models import Answer, Contact
from huifang.stats.figures import Grades
from huifang.stats.periods import Period, months_ending
from huifang.stats.queries import (
    comparison,
    dashboard_report,
    ranking,
    summary,
    trend,
    unit_report,
)
from tests.factories import make_incident
from tests.stats.stats_dataset import SHANGHAI, Dataset, local

NOVEMBER = Period.month(2026, 11)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def november(session: Session, unit_id: int | None = None):  # type: ignore[no-untyped-def]
    return summary(session, NOVEMBER, tz=SHANGHAI, now=NOW, unit_id=unit_id)


def test_station_counts_incidents_contacts_and_answers_of_the_local_month(
    session: Session, data: Dataset
) -> None:
    s1 = november(session, data.s1.id)
    assert (s1.incidents, s1.surveyed, s1.answered) == (2, 2, 2)


def test_incident_just_after_local_midnight_belongs_to_the_new_month(
    session: Session, data: Dataset
) -> None:
    s3 = november(session, data.s3.id)
    assert (s3.incidents, s3.answered, s3.overall) == (1, 1, Grades(basically_satisfied=1))


def test_an_incident_reached_by_several_contacts_is_surveyed_once(
    session: Session, data: Dataset
) -> None:
    # 二所's one November incident has an unreachable, a pending and an answered contact
    assert november(session, data.s2.id).surveyed == 1


@pytest.mark.parametrize("state", ["pending", "excluded"])
def test_pending_and_excluded_contacts_are_not_surveyed(
    session: Session, data: Dataset, state: str
) -> None:
    incident = make_incident(session, unit=data.s3, handled_at=local("2026-11-18 10:00"))
    session.add(
        Contact(campaign_id=1, incident_id=incident.id, phone="+8613900008888", state=state)
    )
    session.commit()
    assert (november(session, data.s3.id).incidents, november(session, data.s3.id).surveyed) == (
        2,
        1,
    )


def test_unclear_answer_counts_as_answered_but_not_graded(session: Session, data: Dataset) -> None:
    s2 = november(session, data.s2.id)
    assert (s2.answered, s2.overall.graded, s2.overall.rate) == (1, 0, None)


def test_station_dimensions_are_graded_separately(session: Session, data: Dataset) -> None:
    s1 = november(session, data.s1.id)
    assert s1.overall == Grades(satisfied=1, unsatisfied=1)
    assert s1.attitude == Grades(satisfied=1, unsatisfied=1)
    assert s1.arrival_time == Grades(satisfied=1, basically_satisfied=1)
    assert s1.arrival_time.rate == 1.0
    assert s1.handling.rate == 0.5


def test_a_second_callback_counts_its_latest_round_once_per_incident(
    session: Session, data: Dataset
) -> None:
    # reopened by the phone line, then satisfied: the latest verdict, counted once
    assert november(session, data.s1.id).second_callback == Grades(satisfied=1)


def test_a_second_callback_an_agent_made_counts_like_the_phone_lines(
    session: Session, data: Dataset
) -> None:
    assert november(session, data.s2.id).second_callback == Grades(basically_satisfied=1)


def test_bureau_sums_its_whole_tree(session: Session, data: Dataset) -> None:
    city = november(session, data.bureau.id)
    assert (city.incidents, city.surveyed, city.answered) == (4, 4, 4)
    assert city.overall == Grades(satisfied=1, basically_satisfied=1, unsatisfied=1)
    assert city.overall.rate == pytest.approx(2 / 3)


def test_no_unit_means_everything(session: Session, data: Dataset) -> None:
    assert november(session) == november(session, data.bureau.id)


def test_late_answer_counts_for_the_month_its_incident_was_handled(
    session: Session, data: Dataset
) -> None:
    incident = make_incident(session, unit=data.s3, handled_at=local("2026-11-30 23:00"))
    contact = Contact(
        campaign_id=1, incident_id=incident.id, phone="+8613900009999", state="answered"
    )
    session.add(contact)
    session.flush()
    session.add(
        Answer(
            contact_id=contact.id,
            incident_id=incident.id,
            question_id="overall",
            dimension="overall",
            outcome="unsatisfied",
            mode="sms",
            created_at=local("2026-12-01 09:00"),
            counted_at=local("2026-12-01 09:00"),
        )  # fmt: skip
    )
    session.commit()
    assert november(session, data.s3.id).overall == Grades(basically_satisfied=1, unsatisfied=1)
    december = summary(session, Period.month(2026, 12), tz=SHANGHAI, now=NOW, unit_id=data.s3.id)
    assert december.answered == 0


def test_complaint_categories_come_from_the_months_escalations(
    session: Session, data: Dataset
) -> None:
    assert november(session).categories == {
        "attitude": 1,
        "handling": 1,
        "other": 1,
        "arrival_time": 1,
    }


def test_tickets_issued_rectified_on_time_and_overdue(session: Session, data: Dataset) -> None:
    city = november(session)
    assert (city.tickets_issued, city.tickets_rectified) == (4, 2)
    assert (city.tickets_on_time, city.tickets_overdue) == (1, 2)
    assert city.rectification_rate == 0.5
    assert city.on_time_rate == 0.25


def test_open_ticket_before_its_deadline_is_not_overdue(session: Session, data: Dataset) -> None:
    s3 = november(session, data.s3.id)
    assert (s3.tickets_issued, s3.tickets_overdue) == (1, 0)


def test_ranking_puts_best_rate_first_and_ungraded_last(session: Session, data: Dataset) -> None:
    rows = ranking(session, NOVEMBER, tz=SHANGHAI, now=NOW, level="station")
    assert [row.unit.code for row in rows] == ["BW3", "BE1", "BE2"]


def test_branch_ranking_uses_the_rolled_up_figures(session: Session, data: Dataset) -> None:
    rows = ranking(session, NOVEMBER, tz=SHANGHAI, now=NOW, level="branch")
    assert [(row.unit.code, row.figures.overall.rate) for row in rows] == [
        ("BW", 1.0),
        ("BE", 0.5),
    ]


def test_unit_report_lists_every_unit_in_tree_order(session: Session, data: Dataset) -> None:
    rows = unit_report(session, NOVEMBER, tz=SHANGHAI, now=NOW)
    assert [row.unit.code for row in rows] == ["B", "BE", "BE1", "BE2", "BW", "BW3"]


def test_month_on_month_and_year_on_year(session: Session, data: Dataset) -> None:
    result = comparison(session, NOVEMBER, tz=SHANGHAI, now=NOW)
    assert result.previous.overall == Grades(satisfied=1)
    assert result.previous.incidents == 2
    assert result.month_on_month == pytest.approx(2 / 3 - 1)
    assert result.year_ago.answered == 0
    assert result.year_on_year is None


def test_dashboard_report_equals_the_separate_queries(session: Session, data: Dataset) -> None:
    result, rows = dashboard_report(session, NOVEMBER, tz=SHANGHAI, now=NOW, unit_id=data.east.id)
    assert result == comparison(session, NOVEMBER, tz=SHANGHAI, now=NOW, unit_id=data.east.id)
    assert rows == unit_report(session, NOVEMBER, tz=SHANGHAI, now=NOW)


def test_trend_gives_one_point_per_month_oldest_first(session: Session, data: Dataset) -> None:
    points = trend(session, months_ending(NOVEMBER, 3), tz=SHANGHAI)
    assert [(p.label, p.answered, p.overall) for p in points] == [
        ("2026-09", 0, Grades()),
        ("2026-10", 1, Grades(satisfied=1)),
        ("2026-11", 4, Grades(satisfied=1, basically_satisfied=1, unsatisfied=1)),
    ]


def test_trend_of_a_unit_counts_only_its_subtree(session: Session, data: Dataset) -> None:
    points = trend(session, months_ending(NOVEMBER, 2), tz=SHANGHAI, unit_id=data.west.id)
    assert [(p.label, p.overall) for p in points] == [
        ("2026-10", Grades()),
        ("2026-11", Grades(basically_satisfied=1)),
    ]


def test_empty_database_gives_zero_figures_and_no_rates(session: Session) -> None:
    empty = november(session)
    assert (empty.incidents, empty.answered, empty.overall.rate, empty.rectification_rate) == (
        0,
        0,
        None,
        None,
    )
