"""The database-backed survey call every provider runs (simulator, Asterisk AGI, Twilio).

`make_survey_call_factory(runtime)` gives the `SurveyCallFactory` of `telephony.base`:
`await factory(attempt_id)` rebuilds the attempt's IVR session by replaying
`call_attempts.ivr_log`, so a call continues where it was in any process (a Twilio webhook
on another replica, a restarted worker).

Rules kept here:
- each `feed` is one transaction: the event joins the log, every new answer is stored as
  it comes (unique per attempt and question: a replay stores nothing twice), a recording
  is stored (and transcribed when a model for the script's language is installed);
- the log is appended under a check of its length: two processes feeding the same call
  at once cannot both extend it (the loser gets `Conflict`);
- the end of the call ends the attempt once (`claims.end_attempt`), applies an opt-out or a
  not-the-caller answer, and opens the escalation once when any answer is unsatisfied;
  a second callback's answer instead closes the ticket it asked about, or reopens it;
- spoken answers are read by the satisfaction classifier (negation, degree words, Vosk's
  spaced Chinese), falling back to the script's phrases where it finds them unclear;
- a call that ended with no usable answer (nobody pressed a key: an answering machine)
  ends as `machine`, one cut short as `abandoned`: both are retried by the policy;
- blocking work (DB, recognition) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.dialer import claims
from huifang.dialer.policy import DialRules
from huifang.domain.campaigns import exclude_contact, opt_out
from huifang.domain.enums import Satisfaction
from huifang.domain.models import (
    Answer,
    CallAttempt,
    Campaign,
    Contact,
    Incident,
    Recording,
    ScriptVersion,
    Unit,
)
from huifang.domain.scripts import script_variables
from huifang.domain.states import AttemptEvent, AttemptState
from huifang.errors import Conflict, NotFound
from huifang.followup.escalations import escalate
from huifang.followup.second_callback import PURPOSE as SECOND_CALLBACK
from huifang.followup.second_callback import ticket_awaiting_second_callback
from huifang.followup.tickets import record_second_callback_result
from huifang.ivr import result as ivr
from huifang.ivr.actions import Action
from huifang.ivr.codec import event_to_dict, replay
from huifang.ivr.events import CallStarted, Event, RecordingFinished
from huifang.ivr.interpreter import Session as IvrSession
from huifang.ivr.interpreter import classifier_matcher
from huifang.ivr.script import Script, parse_script
from huifang.speech.recognizer import Transcript
from huifang.telephony.base import SurveyCall, SurveyCallFactory

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    """Speech → text for a recorded complaint (`huifang.speech.vosk.SpeechPool` is one)."""

    async def transcribe_file(self, path: Path, language: str) -> Transcript: ...


#: complaint text → categories (attitude, arrival_time, handling, other)
Tagger = Callable[[str, str], Iterable[str]]
_GRADED = (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.unsatisfied)


def default_tagger(text: str, language: str) -> list[str]:
    from huifang.speech.classify import tag_complaint

    return [str(tag.category) for tag in tag_complaint(text, language)]


@dataclass(frozen=True, slots=True)
class _CallContext:
    attempt_id: int
    contact_id: int
    incident_id: int
    campaign_id: int
    phone: str
    script: Script
    purpose: str


class DbSurveyCall:
    """One answered call's survey, persisted event by event. Not shared between tasks."""

    def __init__(
        self,
        runtime: Runtime,
        context: _CallContext,
        session: IvrSession,
        log_length: int,
        last_actions: list[Action],
        *,
        speech: Transcriber | None,
        tagger: Tagger,
    ) -> None:
        self._runtime = runtime
        self._context = context
        self._session = session
        self._log_length = log_length
        self._last_actions = last_actions
        self._speech = speech
        self._tagger = tagger
        #: why complaints were not transcribed, for the operator (empty when they were)
        self.speech_note = ""
        #: word timings of the last transcription, stored with its recording
        self._words: list[dict[str, Any]] = []

    @property
    def finished(self) -> bool:
        return self._session.finished

    @property
    def result(self) -> ivr.SurveyResult:
        return self._session.result()

    async def start(self) -> Sequence[Action]:
        if self._log_length:
            return list(self._last_actions)  # re-entered: carry on where the call was
        return await self.feed(CallStarted())

    async def feed(self, event: Event) -> Sequence[Action]:
        if self.finished:
            return []
        if isinstance(event, RecordingFinished) and not event.transcript:
            event = await self._transcribed(event)
        answers_before = len(self._session.result().answers)
        actions = self._session.feed(event)
        result = self._session.result()
        try:
            await asyncio.to_thread(self._persist, event, result.answers[answers_before:], result)
        except BaseException:
            # the DB refused the step: the in-memory session is ahead of the log now
            self._session.finished = True
            raise
        self._log_length += 1
        self._last_actions = actions
        return actions

    async def _transcribed(self, event: RecordingFinished) -> RecordingFinished:
        if self._speech is None:
            return event
        from huifang.speech.models import ModelMissing

        try:
            transcript: Transcript = await self._speech.transcribe_file(
                Path(event.path), self._context.script.language
            )
        except ModelMissing as missing:
            self.speech_note = str(missing)
            return event
        self._words = list(transcript.as_dict()["words"])  # type: ignore[arg-type]
        return RecordingFinished(
            path=event.path,
            duration_seconds=event.duration_seconds,
            transcript=transcript.text,
            confidence=transcript.confidence,
        )

    # --- one transaction per event --------------------------------------------------------

    def _persist(
        self, event: Event, new_answers: Sequence[ivr.Answer], result: ivr.SurveyResult
    ) -> None:
        now = self._runtime.clock.now()
        ctx = self._context
        with session_scope(self._runtime.engine) as db:
            self._append_log(db, event, now)
            if isinstance(event, CallStarted):
                claims.note_progress(db, ctx.attempt_id, AttemptEvent.answer, now=now)
            recording_id = None
            if isinstance(event, RecordingFinished):
                recording_id = self._store_recording(db, event, now)
            for answer in new_answers:
                self._store_answer(db, answer, recording_id, now)
            if self._session.finished:
                self._finish(db, result, now)

    def _append_log(self, db: Session, event: Event, now: datetime) -> None:
        """Append under compare-and-set on the log's length: of two processes (or threads)
        feeding the same call at once, exactly one extends it; the other gets Conflict."""
        attempt_id = self._context.attempt_id
        current = db.execute(
            select(CallAttempt.ivr_log).where(CallAttempt.id == attempt_id)  # type: ignore[arg-type]
        ).scalar_one()
        extended = db.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt_id)  # type: ignore[arg-type]
            .where(func.json_array_length(CallAttempt.ivr_log) == self._log_length)
            .values(ivr_log=[*current, event_to_dict(event)])
        )
        if extended.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"call attempt {attempt_id}: its IVR log moved on elsewhere")

    def _store_recording(self, db: Session, event: RecordingFinished, now: datetime) -> int:
        recording = Recording(
            attempt_id=self._context.attempt_id,
            path=event.path,
            duration_seconds=event.duration_seconds,
            language=self._context.script.language,
            transcript=event.transcript,
            words=self._words,
            confidence=event.confidence,
            created_at=now,
        )
        db.add(recording)
        db.flush()
        assert recording.id is not None
        return recording.id

    def _store_answer(
        self, db: Session, answer: ivr.Answer, recording_id: int | None, now: datetime
    ) -> None:
        ctx = self._context
        categories: list[str] = []
        if answer.transcript and answer.outcome is None:
            categories = list(self._tagger(answer.transcript, ctx.script.language))
        row = Answer(
            contact_id=ctx.contact_id,
            incident_id=ctx.incident_id,
            attempt_id=ctx.attempt_id,
            question_id=answer.question_id,
            dimension=answer.dimension,
            outcome=str(answer.outcome) if answer.outcome is not None else None,
            value=answer.value,
            mode=str(answer.mode),
            confidence=answer.confidence,
            recording_id=recording_id if answer.recording_path else None,
            transcript=answer.transcript,
            categories=categories,
            created_at=now,
        )
        try:
            with db.begin_nested():
                db.add(row)
        except IntegrityError:
            db.expunge(row)  # this question's answer is stored already (a replayed step)

    def _finish(self, db: Session, result: ivr.SurveyResult, now: datetime) -> None:
        ctx = self._context
        usable = (
            result.opted_out
            or result.not_the_caller
            or any(a.outcome in _GRADED and a.dimension != "confirm" for a in result.answers)
        )
        if result.completed and usable:
            outcome = AttemptState.completed
        elif result.hung_up or usable:
            outcome = AttemptState.abandoned
        else:
            outcome = AttemptState.machine
        campaign = db.get(Campaign, ctx.campaign_id)
        assert campaign is not None
        rules = DialRules.from_campaign(campaign.rules, self._runtime.settings)
        ended = claims.end_attempt(
            db, ctx.attempt_id, outcome, now=now, rules_for=lambda _id: rules,
            contact_outcome=str(result.outcome) if outcome == AttemptState.completed else None,
        )  # fmt: skip
        if not ended:
            log.info(
                "attempt %s had been ended already; applying its answers' effects", ctx.attempt_id
            )
        # idempotent, and applied even when something else ended the attempt first (the
        # provider's hang-up report, lease recovery): an unsatisfied answer is never dropped
        if result.opted_out:
            opt_out(db, phone=ctx.phone, source="call", now=now, note=f"attempt {ctx.attempt_id}")
        elif result.not_the_caller:
            exclude_contact(db, ctx.contact_id, reason="not_the_caller", now=now)
        if ctx.purpose == SECOND_CALLBACK:
            self._settle_ticket(db, result, now)
        elif result.escalate:
            self._escalate(db, result, now)

    def _settle_ticket(self, db: Session, result: ivr.SurveyResult, now: datetime) -> None:
        """The second callback's verdict: satisfied (or basically) closes the ticket, still
        unsatisfied reopens it; an unclear or missing answer leaves it to an agent."""
        if result.outcome not in _GRADED:
            return
        ticket = ticket_awaiting_second_callback(db, self._context.attempt_id)
        if ticket is None or ticket.id is None:
            return  # settled already (a replayed ending) or by an agent meanwhile
        satisfied = result.outcome != Satisfaction.unsatisfied
        note = f"second callback, attempt {self._context.attempt_id}: {result.outcome}"
        record_second_callback_result(db, ticket.id, satisfied, now, None, note=note)

    def _escalate(self, db: Session, result: ivr.SurveyResult, now: datetime) -> None:
        ctx = self._context
        reasons = [a for a in result.answers if a.outcome is None and a.transcript]
        unhappy = [a.dimension for a in result.answers if a.outcome == Satisfaction.unsatisfied]
        categories: list[str] = []
        for reason in reasons:
            categories += self._tagger(reason.transcript, ctx.script.language)
        categories += [d for d in unhappy if d in ("attitude", "arrival_time", "handling")]
        summary = " / ".join(r.transcript for r in reasons) or "不满意：" + "、".join(unhappy)
        escalate(
            db,
            incident_id=ctx.incident_id,
            origin="voice",
            now=now,
            sla_hours=self._runtime.settings.escalation_sla_hours,
            contact_id=ctx.contact_id,
            attempt_id=ctx.attempt_id,
            summary=summary,
            categories=list(dict.fromkeys(categories)),
        )


def make_survey_call_factory(
    runtime: Runtime, *, speech: Transcriber | None = None, classifier: Tagger | None = None
) -> SurveyCallFactory:
    """The factory providers are built with. `speech` (a `SpeechPool`) transcribes recorded
    complaints; `classifier` tags their categories (default: `speech.classify.tag_complaint`)."""
    scripts: dict[int, Script] = {}
    tagger = classifier or default_tagger

    def load(attempt_id: int) -> tuple[_CallContext, dict[str, str], list[dict[str, Any]]]:
        with session_scope(runtime.engine) as db:
            attempt = db.get(CallAttempt, attempt_id)
            if attempt is None:
                raise NotFound(f"call attempt {attempt_id} does not exist")
            contact = db.get(Contact, attempt.contact_id)
            incident = db.get(Incident, contact.incident_id) if contact else None
            campaign = db.get(Campaign, attempt.campaign_id)
            if contact is None or incident is None or campaign is None:
                raise NotFound(f"call attempt {attempt_id}: its contact or incident is gone")
            unit = db.get(Unit, incident.unit_id)
            version_id = attempt.script_version_id or campaign.script_version_id
            if version_id not in scripts:
                version = db.get(ScriptVersion, version_id)
                if version is None:
                    raise NotFound(f"script version {version_id} does not exist")
                scripts[version_id] = parse_script(version.source_yaml)
            script = scripts[version_id]
            assert attempt.id is not None and contact.id is not None and incident.id is not None
            variables = script_variables(
                incident,
                unit_name=unit.name if unit else "",
                language=script.language,
                tz=runtime.settings.tz,
            )
            context = _CallContext(
                attempt.id, contact.id, incident.id, campaign.id or 0, contact.phone, script,
                attempt.purpose,
            )  # fmt: skip
            return context, variables, list(attempt.ivr_log)

    async def factory(attempt_id: int) -> SurveyCall:
        context, variables, logged = await asyncio.to_thread(load, attempt_id)
        from huifang.speech.classify import classify

        matcher = classifier_matcher(classify, context.script.language)
        session, actions = replay(context.script, variables, logged, speech_matcher=matcher)
        return DbSurveyCall(
            runtime, context, session, len(logged), actions, speech=speech, tagger=tagger
        )

    return factory
