"""The review inbox (待研判): SMS replies no machine settled become items; an agent's label has
the effect an automatic reading would have had; labels are audited, given once, and become
corpus rows."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.domain.enums import Satisfaction
from huifang.domain.models import (
    Answer,
    AuditEvent,
    Contact,
    Escalation,
    OptOut,
    ReviewItem,
    SmsMessage,
    User,
)
from huifang.errors import Conflict, Forbidden
from huifang.followup.review import (
    UNCLEAR_AFTER_REASK,
    inbox_count,
    label_review,
    list_reviews,
    review_detail,
    reviewed_rows,
)
from huifang.settings import Settings
from huifang.sms.survey import InboundOutcome, handle_inbound_sms
from huifang.speech.reader import ReviewReason
from tests.factories import T0, make_sms_surveyed_contact
from tests.factories import UNREADABLE_REPLY as UNREADABLE
from tests.followup.conftest import Staff

_ids = count(1)


def reply(session: Session, settings: Settings, contact: Contact, body: str) -> InboundOutcome:
    outcome = handle_inbound_sms(
        session, phone=contact.phone, body=body, provider_message_id=f"SM{next(_ids)}",
        now=T0 + timedelta(hours=1), settings=settings,
    )  # fmt: skip
    session.commit()
    return outcome


@pytest.fixture
def contact(session: Session) -> Contact:
    made = make_sms_surveyed_contact(session)
    session.commit()
    return made


@pytest.fixture
def item(session: Session, settings: Settings, contact: Contact) -> ReviewItem:
    outcome = reply(session, settings, contact, UNREADABLE)
    found = session.get(ReviewItem, outcome.review_id)
    assert found is not None
    return found


def label(session: Session, item: ReviewItem, agent: User, value: Satisfaction):  # type: ignore[no-untyped-def]
    labelled = label_review(
        session, item.id, agent=agent, label=value, now=T0 + timedelta(hours=2), sla_hours=24
    )
    session.commit()
    return labelled


def test_a_reply_the_reader_is_not_sure_of_becomes_a_review_item(
    session: Session, settings: Settings, contact: Contact, staff: Staff
) -> None:
    outcome = reply(session, settings, contact, UNREADABLE)
    assert outcome.review_id is not None and outcome.reply_sms_id is None
    [entry] = list_reviews(session, actor=staff.agent)
    survey = session.exec(select(SmsMessage).where(SmsMessage.direction == "out")).one()
    assert (entry.item.text, entry.item.channel, entry.item.reason) == (
        UNREADABLE, "sms", ReviewReason.unknown_language,
    )  # fmt: skip
    assert entry.item.question == survey.body  # the question's text, as the citizen read it
    assert (entry.incident.id, entry.unit.id) == (contact.incident_id, entry.incident.unit_id)
    assert session.exec(select(Answer)).all() == [] and inbox_count(session) == 1


def test_the_first_unclear_reply_is_asked_again_and_a_second_goes_to_review(
    session: Session, settings: Settings, contact: Contact, staff: Staff
) -> None:
    first = reply(session, settings, contact, "你们是哪里？")
    assert first.label is Satisfaction.unclear and first.reply_sms_id is not None
    assert inbox_count(session) == 0
    second = reply(session, settings, contact, "什么意思")
    assert second.reply_sms_id is None and second.review_id is not None
    item = session.get(ReviewItem, second.review_id)
    assert item is not None and item.reason == UNCLEAR_AFTER_REASK
    assert item.question == first.reply_text  # the re-ask is what they answered
    detail = review_detail(session, item.id, actor=staff.agent)
    replies = [m.body for m in detail.conversation if m.direction == "in"]
    assert replies == ["你们是哪里？", "什么意思"]  # the agent reads both


def test_labelling_unsatisfied_opens_the_escalation_an_automatic_reading_would(
    session: Session, settings: Settings, staff: Staff, item: ReviewItem
) -> None:
    labelled = label(session, item, staff.agent, Satisfaction.unsatisfied)
    automatic_contact = make_sms_surveyed_contact(session)
    session.commit()
    automatic = reply(session, settings, automatic_contact, "不满意，民警态度太差")
    by_hand = session.get(Escalation, labelled.escalation_id)
    by_reader = session.get(Escalation, automatic.escalation_id)
    assert by_hand is not None and by_reader is not None
    assert (by_hand.origin, by_hand.contact_id, by_hand.summary, by_hand.state) == (
        "sms", item.contact_id, UNREADABLE, "open",
    )  # fmt: skip
    assert by_reader.origin == by_hand.origin and by_reader.summary == "不满意，民警态度太差"
    answer = session.get(Answer, labelled.answer_id)
    assert answer is not None
    assert (answer.outcome, answer.reader_version) == ("unsatisfied", f"review:{item.id}")


def test_a_label_is_stored_with_who_gave_it_and_audited(
    session: Session, staff: Staff, item: ReviewItem
) -> None:
    label(session, item, staff.agent, Satisfaction.unsatisfied)
    session.refresh(item)
    assert (item.state, item.label, item.labelled_by) == ("labelled", "unsatisfied", staff.agent.id)
    audit = session.exec(select(AuditEvent).where(AuditEvent.action == "review.label")).one()
    assert (audit.actor_id, audit.target_id, audit.detail["label"]) == (
        staff.agent.id, str(item.id), "unsatisfied",
    )  # fmt: skip
    assert inbox_count(session) == 0


def test_labelling_satisfied_stores_the_answer_and_opens_nothing(
    session: Session, staff: Staff, item: ReviewItem
) -> None:
    labelled = label(session, item, staff.agent, Satisfaction.satisfied)
    assert labelled.escalation_id is None
    answer = session.get(Answer, labelled.answer_id)
    contact = session.get(Contact, item.contact_id, populate_existing=True)
    assert answer is not None and answer.outcome == "satisfied"
    assert contact is not None and (contact.state, contact.outcome) == ("answered", "satisfied")
    assert session.exec(select(Escalation)).all() == []


def test_labelling_opt_out_records_the_opt_out_as_an_sms_opt_out_does(
    session: Session, staff: Staff, item: ReviewItem, contact: Contact
) -> None:
    assert label(session, item, staff.agent, Satisfaction.opt_out).opted_out
    opted = session.exec(select(OptOut).where(OptOut.phone == contact.phone)).one()
    assert opted.source == "sms"
    stopped = session.get(Contact, contact.id, populate_existing=True)
    assert stopped is not None and stopped.state == "excluded"


def test_labelling_not_an_answer_closes_the_item_and_changes_nothing_else(
    session: Session, staff: Staff, item: ReviewItem
) -> None:
    labelled = label(session, item, staff.agent, Satisfaction.unclear)
    assert (labelled.answer_id, labelled.escalation_id, labelled.opted_out) == (None, None, False)
    assert session.exec(select(Answer)).all() == [] and inbox_count(session) == 0


def test_a_second_label_is_refused_naming_who_gave_the_first(
    session: Session, staff: Staff, item: ReviewItem
) -> None:
    label(session, item, staff.agent, Satisfaction.unsatisfied)
    with pytest.raises(Conflict, match=f"labelled unsatisfied by {staff.agent.username}"):
        label(session, item, staff.agent2, Satisfaction.satisfied)
    assert len(session.exec(select(Escalation)).all()) == 1


def test_of_two_agents_labelling_at_once_one_wins_and_the_other_is_told(
    engine: Engine, session: Session, staff: Staff, item: ReviewItem
) -> None:
    with Session(engine) as first, Session(engine) as second:
        both_see_it_open = [s.get(ReviewItem, item.id) for s in (first, second)]
        assert all(found is not None and found.state == "open" for found in both_see_it_open)
        label_review(first, item.id, agent=staff.agent, label=Satisfaction.unsatisfied,
                     now=T0, sla_hours=24)  # fmt: skip
        first.commit()
        with pytest.raises(Conflict):
            label_review(second, item.id, agent=staff.agent2, label=Satisfaction.satisfied,
                         now=T0, sla_hours=24)  # fmt: skip
    session.refresh(item)
    assert (item.label, item.labelled_by) == ("unsatisfied", staff.agent.id)


def test_an_inspector_reads_the_inbox_but_may_not_label(
    session: Session, staff: Staff, item: ReviewItem
) -> None:
    assert [e.item.id for e in list_reviews(session, actor=staff.inspector)] == [item.id]
    with pytest.raises(Forbidden):
        label(session, item, staff.inspector, Satisfaction.unsatisfied)
    with pytest.raises(Forbidden):
        list_reviews(session, actor=staff.supervisor)


def test_labelled_items_become_corpus_rows_with_who_labelled_them_and_when(
    session: Session, staff: Staff, item: ReviewItem
) -> None:
    label(session, item, staff.agent, Satisfaction.unsatisfied)
    [row] = reviewed_rows(session)
    assert (row.text, row.label, row.channel, row.language) == (
        UNREADABLE, Satisfaction.unsatisfied, "sms", "zh-CN",
    )  # fmt: skip
    assert (row.labelled_by, row.labelled_at) == (staff.agent.username, T0 + timedelta(hours=2))
