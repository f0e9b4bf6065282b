"""Campaigns: who to survey, through which channels, under which calling rules; and the
opt-outs and do-not-call list that every channel of every campaign obeys.

Rules kept here:
- one contact per phone per campaign, even when a citizen reported several incidents
  (the latest handled incident is the one asked about); imported complaints are not
  surveyed, they go to the escalation queue;
- nobody is surveyed twice about one incident: an incident with an answered contact in any
  campaign, or a pending / in-progress one in a campaign not finished, is left out — unless
  the admin asks for it (`CampaignPlan.resurvey`); `plan_contacts` says how many a campaign
  adds and how many it leaves out and why, before anything is written (a preview);
- a phone on the opt-out / do-not-call list gets an `excluded` contact and no attempt,
  re-survey or not;
- `opt_out` stops everything at once, in the caller's transaction: the phone's open contacts
  in every campaign are excluded and their queued calls (a pending SMS-to-voice fallback
  included) cancelled; the dialer checks the list again at the moment of dialing;
- bulk work is set-based SQL (a campaign may hold a million contacts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    bindparam,
    exists,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import CallAttempt, Campaign, Contact, Incident, OptOut, Unit, User
from huifang.domain.states import (
    CAMPAIGN,
    CONTACT,
    AttemptState,
    CampaignEvent,
    CampaignState,
    ContactEvent,
    ContactState,
)
from huifang.domain.types import UTCDateTime
from huifang.errors import Conflict, NotFound
from huifang.phones import mask_phone

CHANNELS = ("sms", "voice", "sms_then_voice")
#: the kind of the campaign that asks tickets' citizens again (`huifang.followup.second_callback`)
SECOND_CALLBACK_KIND = "second_callback"
OPT_OUT_SOURCES = ("sms", "call", "agent", "do_not_call")
#: contacts written per statement when a campaign is created
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class IncidentSelection:
    """Incidents handled in [handled_from, handled_to), optionally narrowed."""

    handled_from: datetime
    handled_to: datetime
    sources: tuple[str, ...] = ()
    #: units whose whole subtree is selected
    unit_ids: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()

    @classmethod
    def handled_on(cls, day: date, tz: ZoneInfo, **narrowing: Any) -> IncidentSelection:
        """Everything handled on the local `day` (e.g. yesterday)."""
        return cls.handled_between(day, day, tz, **narrowing)

    @classmethod
    def handled_between(
        cls, first: date, last: date, tz: ZoneInfo, **narrowing: Any
    ) -> IncidentSelection:
        """Everything handled from the local day `first` to the local day `last`, both included."""
        if last < first:
            raise ValueError(f"handled_to: {last} is before handled_from {first}")
        start = datetime.combine(first, time(0), tz)
        return cls(start, datetime.combine(last + timedelta(days=1), time(0), tz), **narrowing)

    def as_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["handled_from"] = self.handled_from.isoformat()
        raw["handled_to"] = self.handled_to.isoformat()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    name: str
    script_version_id: int
    selection: IncidentSelection
    channels: str = "sms_then_voice"
    sms_script_version_id: int | None = None
    sms_fallback_hours: float = 4.0
    rules: Mapping[str, Any] = field(default_factory=dict)
    max_concurrent_calls: int | None = None
    #: survey again incidents already surveyed (answered in any campaign, or pending or in
    #: progress in one not finished): only when the admin asks for it
    resurvey: bool = False


#: why an incident of the selection gets no contact to survey
SKIP_REASONS = ("already_surveyed", "in_another_campaign", "same_citizen", "opted_out")


@dataclass(frozen=True, slots=True)
class ContactPlan:
    """Who a campaign contacts: the (incident, phone) pairs, and what it leaves out, by why."""

    #: incidents the selection matches (imported complaints are not surveyed: not counted)
    incidents: int
    #: (incident id, phone) surveyed: one per phone, its latest incident
    chosen: list[tuple[int, str]]
    #: phones of `chosen` on the opt-out list: their contacts are written excluded
    opted_out: frozenset[str]
    #: incidents left out per reason of `SKIP_REASONS`
    skipped: Mapping[str, int]

    @property
    def adds(self) -> int:
        """Contacts to survey (opted-out phones are not)."""
        return len(self.chosen) - len(self.opted_out)

    def as_json(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "adds": self.adds,
            "skipped": {reason: self.skipped.get(reason, 0) for reason in SKIP_REASONS},
        }


def plan_contacts(session: Session, selection: IncidentSelection, *, resurvey: bool) -> ContactPlan:
    """Who a campaign of `selection` surveys, and who it leaves out and why; writes nothing
    (a preview, and the first half of `create_campaign`)."""
    skipped: Counter[str] = Counter()
    latest: dict[str, int] = {}
    incidents = 0
    for incident_id, phone, answered, in_progress in session.execute(_selected(session, selection)):
        incidents += 1
        if answered and not resurvey:
            skipped["already_surveyed"] += 1
        elif in_progress and not resurvey:
            skipped["in_another_campaign"] += 1
        else:
            if phone in latest:
                skipped["same_citizen"] += 1
            latest[phone] = incident_id  # ordered by time: the last one wins
    chosen = [(incident_id, phone) for phone, incident_id in latest.items()]
    opted: set[str] = set()
    for start in range(0, len(chosen), _BATCH):
        opted |= opted_out_among(session, [phone for _i, phone in chosen[start : start + _BATCH]])
    skipped["opted_out"] = len(opted)
    return ContactPlan(incidents, chosen, frozenset(opted), skipped)


def create_campaign(
    session: Session,
    plan: CampaignPlan,
    *,
    now: datetime,
    by: User | None = None,
    contacts: ContactPlan | None = None,
) -> Campaign:
    """A draft campaign with one contact per selected phone (opted-out phones excluded).
    `contacts` is the plan a preview already made in this transaction (else it is made)."""
    if plan.channels not in CHANNELS:
        raise ValueError(f"channels: {plan.channels!r} is not one of {', '.join(CHANNELS)}")
    if contacts is None:
        contacts = plan_contacts(session, plan.selection, resurvey=plan.resurvey)
    campaign = Campaign(
        name=plan.name,
        script_version_id=plan.script_version_id,
        sms_script_version_id=plan.sms_script_version_id,
        channels=plan.channels,
        sms_fallback_hours=plan.sms_fallback_hours,
        selection={**plan.selection.as_json(), "resurvey": plan.resurvey},
        rules=dict(plan.rules),
        max_concurrent_calls=plan.max_concurrent_calls,
        created_at=now,
        created_by=by.id if by else None,
    )
    session.add(campaign)
    session.flush()
    assert campaign.id is not None
    chosen, opted = contacts.chosen, contacts.opted_out
    for start in range(0, len(chosen), _BATCH):
        batch = chosen[start : start + _BATCH]
        session.execute(
            insert(Contact),
            [
                {
                    "campaign_id": campaign.id,
                    "incident_id": incident_id,
                    "phone": phone,
                    "state": ContactState.excluded if phone in opted else ContactState.pending,
                    "outcome": "opted_out" if phone in opted else None,
                    "next_due_at": None if phone in opted else now,
                    "updated_at": now,
                    "attempts": 0,
                }
                for incident_id, phone in batch
            ],
        )
    session.flush()
    record_audit(
        session, at=now, actor=by, action="campaign.create", target_type="campaign",
        target_id=campaign.id,
        detail={"selection": campaign.selection, "channels": plan.channels, **contacts.as_json()},
    )  # fmt: skip
    return campaign


def _surveyed(states: Sequence[str], *, open_campaigns_only: bool) -> ColumnElement[bool]:
    """Whether the incident has a contact in one of `states` (in a campaign not finished)."""
    query = (
        select(col(Contact.id))
        .where(col(Contact.incident_id) == col(Incident.id))
        .where(col(Contact.state).in_(states))
    )
    if open_campaigns_only:
        query = query.where(
            col(Contact.campaign_id).in_(
                select(col(Campaign.id)).where(col(Campaign.state) != CampaignState.finished)
            )
        )
    return query.exists()


def _selected(session: Session, selection: IncidentSelection) -> Select[Any]:
    """The selection's incidents, oldest first: id, phone, answered, in progress elsewhere."""
    query = (
        select(
            col(Incident.id),
            col(Incident.caller_phone),
            _surveyed([ContactState.answered], open_campaigns_only=False),
            _surveyed([ContactState.pending, ContactState.in_progress], open_campaigns_only=True),
        )
        .where(col(Incident.handled_at) >= selection.handled_from)
        .where(col(Incident.handled_at) < selection.handled_to)
        .where(col(Incident.is_complaint).is_(False))
        .order_by(col(Incident.handled_at), col(Incident.id))
    )
    if selection.sources:
        query = query.where(col(Incident.source).in_(selection.sources))
    if selection.categories:
        query = query.where(col(Incident.category).in_(selection.categories))
    if selection.unit_ids:
        paths = session.execute(
            select(col(Unit.path)).where(col(Unit.id).in_(selection.unit_ids))
        ).all()
        subtree = select(col(Unit.id)).where(
            or_(*(col(Unit.path).startswith(row[0]) for row in paths))
        )
        query = query.where(col(Incident.unit_id).in_(subtree))
    return query


def start_campaign(
    session: Session, campaign_id: int, *, now: datetime, by: User | None = None
) -> int:
    """Run a draft campaign: queue its calls. Returns how many calls were queued.

    Voice campaigns queue every pending contact's call, due now. SMS-then-voice campaigns
    queue each contact's fallback call due `sms_fallback_hours` after the start, so that it
    happens even if the survey SMS never goes out; sending the contact's survey SMS pushes
    it to `sms_fallback_hours` after the send when that is later (`huifang.sms.survey`).
    The dialer cancels it at dialing time if the citizen replied or opted out meanwhile."""
    campaign = _transition(session, campaign_id, CampaignEvent.start, now=now, by=by)
    if campaign.channels == "sms":
        return 0
    due = now
    if campaign.channels == "sms_then_voice":
        due = now + timedelta(hours=campaign.sms_fallback_hours)
    return queue_first_calls(session, campaign, due_at=due, now=now)


def queue_first_calls(
    session: Session, campaign: Campaign, *, due_at: datetime, now: datetime
) -> int:
    """One queued first attempt for each pending contact of `campaign` that has none."""
    # a text() INSERT runs through execute(), whose declared Result has no rowcount
    result = cast(
        CursorResult[Any],
        session.execute(
            text(
                "INSERT INTO call_attempts (contact_id, campaign_id, number, state, purpose,"
                " script_version_id, provider, provider_call_id, due_at, claimed_by, cause,"
                " ivr_log, created_at)"
                " SELECT c.id, c.campaign_id, c.attempts + 1, 'queued', 'survey', :script, '', '',"
                " :due, '', '', '[]', :now FROM contacts c"
                " WHERE c.campaign_id = :campaign AND c.state IN ('pending', 'in_progress')"
                " AND NOT EXISTS (SELECT 1 FROM call_attempts a WHERE a.contact_id = c.id"
                " AND a.state IN ('queued', 'dialing', 'ringing', 'answered'))"
            ).bindparams(bindparam("due", type_=UTCDateTime), bindparam("now", type_=UTCDateTime)),
            {
                "script": campaign.script_version_id,
                "due": due_at,
                "now": now,
                "campaign": campaign.id,
            },
        ),
    )
    return int(result.rowcount or 0)


def pause_campaign(
    session: Session, campaign_id: int, *, now: datetime, by: User | None = None
) -> Campaign:
    return _transition(session, campaign_id, CampaignEvent.pause, now=now, by=by)


def resume_campaign(
    session: Session, campaign_id: int, *, now: datetime, by: User | None = None
) -> Campaign:
    return _transition(session, campaign_id, CampaignEvent.resume, now=now, by=by)


def finish_campaign(
    session: Session, campaign_id: int, *, now: datetime, by: User | None = None
) -> Campaign:
    """Stop a campaign for good: its queued calls are cancelled. A second-callback
    campaign's contacts still being tried are excluded too: their rounds go to the agents
    instead of waiting for calls that will not come."""
    campaign = _transition(session, campaign_id, CampaignEvent.finish, now=now, by=by)
    session.execute(
        update(CallAttempt)
        .where(col(CallAttempt.campaign_id) == campaign_id)
        .where(col(CallAttempt.state) == AttemptState.queued)
        .values(state=AttemptState.cancelled, cause="campaign_finished", ended_at=now)
    )
    if campaign.kind == SECOND_CALLBACK_KIND:
        still_tried = (col(Contact.campaign_id) == campaign_id) & col(Contact.state).in_(
            [ContactState.pending, ContactState.in_progress]
        )
        _stop_contacts(session, still_tried, reason="campaign_finished", now=now)
    return campaign


def _transition(
    session: Session, campaign_id: int, event: CampaignEvent, *, now: datetime, by: User | None
) -> Campaign:
    """Move the campaign by `event` (guarded), audited as `campaign.<event>`."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    target = CAMPAIGN.advance(CampaignState(campaign.state), event)
    moved = session.exec(
        update(Campaign)
        .where(col(Campaign.id) == campaign_id)
        .where(col(Campaign.state) == campaign.state)
        .values(state=target)
    )
    if moved.rowcount != 1:
        raise Conflict(f"campaign {campaign_id} changed state meanwhile")
    session.refresh(campaign)
    record_audit(
        session, at=now, actor=by, action=f"campaign.{event.value}", target_type="campaign",
        target_id=campaign_id, detail={"state": campaign.state},
    )  # fmt: skip
    return campaign


# --- opt-outs and do-not-call -------------------------------------------------------------


def is_opted_out(session: Session, phone: str) -> bool:
    return bool(session.execute(select(exists().where(col(OptOut.phone) == phone))).one()[0])


def opted_out_among(session: Session, phones: Sequence[str]) -> set[str]:
    if not phones:
        return set()
    rows = session.execute(select(col(OptOut.phone)).where(col(OptOut.phone).in_(phones)))
    return {row[0] for row in rows}


def opt_out(
    session: Session,
    *,
    phone: str,
    source: str,
    now: datetime,
    note: str = "",
    by: User | None = None,
) -> bool:
    """Put `phone` on the list and stop every channel of every campaign for it.
    True when the phone was not on the list before."""
    if source not in OPT_OUT_SOURCES:
        raise ValueError(f"source: {source!r} is not one of {', '.join(OPT_OUT_SOURCES)}")
    new = not is_opted_out(session, phone)
    if new:
        entry = OptOut(phone=phone, source=source, note=note, created_at=now)
        with session.begin_nested():
            session.add(entry)
    _stop_contacts(session, col(Contact.phone) == phone, reason="opted_out", now=now)
    if new:
        # the entry names the opt-out row, never the number (the log is read by many)
        record_audit(
            session, at=now, actor=by, action="opt_out", target_type="opt_out",
            target_id=entry.id, detail={"source": source, "phone": mask_phone(phone)},
        )  # fmt: skip
    return new


def import_do_not_call(session: Session, phones: Iterable[str], *, now: datetime) -> int:
    """Add already-normalised phones to the do-not-call list; returns how many were new."""
    return sum(opt_out(session, phone=p, source="do_not_call", now=now) for p in set(phones))


def exclude_contact(session: Session, contact_id: int, *, reason: str, now: datetime) -> bool:
    """Stop surveying one contact (not the caller, duplicate); its queued calls are cancelled."""
    return _stop_contacts(session, col(Contact.id) == contact_id, reason=reason, now=now) == 1


def _stop_contacts(
    session: Session, which: ColumnElement[bool], *, reason: str, now: datetime
) -> int:
    """Cancel the queued calls of the contacts `which` selects and exclude those still open;
    how many were excluded."""
    session.execute(
        update(CallAttempt)
        .where(col(CallAttempt.contact_id).in_(select(col(Contact.id)).where(which)))
        .where(col(CallAttempt.state) == AttemptState.queued)
        .values(state=AttemptState.cancelled, cause=reason, ended_at=now)
    )
    moved = session.exec(
        update(Contact)
        .where(which)
        .where(col(Contact.state).in_(CONTACT.sources(ContactEvent.exclude)))
        .values(state=ContactState.excluded, outcome=reason, next_due_at=None, updated_at=now)
    )
    return int(moved.rowcount or 0)
