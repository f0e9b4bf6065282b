"""The database-backed survey call every provider runs (simulator, Asterisk AGI, Twilio).

`make_survey_call_factory(runtime)` gives the `SurveyCallFactory` of `telephony.base`:
`await factory(attempt_id)` rebuilds the attempt's IVR session by replaying
`call_attempts.ivr_log`, so a call continues where it was in any process (a Twilio webhook
on another replica, a restarted worker).

Rules kept here:
- each `feed` is one transaction, tried again after a transient database error (a dropped
  connection, a serialization failure, SQLite busy: `db.retry_transient`), so such an error
  never ends an answered call; a try whose commit landed before its connection dropped is
  found in the log and not applied twice. The event joins the log, every new answer is stored as
  it comes (one per attempt and question: a question asked again keeps its first), a recording
  is stored (and transcribed when a model for the script's language is installed);
- the log is appended under a check of its length: two processes feeding the same call
  at once cannot both extend it (the loser gets `Conflict`);
- a step fed with an idempotency key (a provider's request id, as Twilio's turns have)
  records the key in the same transaction: the same key a second time, from any process,
  changes nothing and raises `AlreadyApplied`;
- the steps of a call's middle (a key, a phrase) are a few Core statements, no ORM unit of
  work: they are on every turn's path; the ORM serves the call's start and end;
- the end of the call ends the attempt once (`claims.end_attempt`), applies an opt-out or a
  not-the-caller answer, and opens the escalation once when any answer is unsatisfied;
  a second callback's answer instead closes the ticket it asked about, or reopens it;
- spoken answers are read by the reply reader (`speech.reader`: the rules and the learned
  model), falling back to the script's phrases where it finds them unclear; one it is not
  sure of is asked again by keys, and a question that ends with the citizen's words but no
  usable answer stores them as an unclear answer and, on a survey call, opens a review item
  (待研判) for an agent: what a citizen said is never dropped unread (a second callback left
  unclear stays with its ticket's agent, who calls the citizen);
- a call that ended with no usable answer (nobody pressed a key: an answering machine)
  ends as `machine`, one cut short as `abandoned`: both are retried by the policy;
- blocking work runs off the event loop (database work through `Runtime.run_db`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import JSON, Connection, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from huifang.bootstrap import Runtime
from huifang.db import retry_transient, session_scope
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
    WebhookReceipt,
)
from huifang.domain.scripts import script_variables
from huifang.domain.states import AttemptEvent, AttemptState
from huifang.domain.types import UTCDateTime
from huifang.errors import AlreadyApplied, Conflict, NotFound
from huifang.followup.escalations import escalate
from huifang.followup.review import UNCLEAR_AFTER_REASK, open_voice_review
from huifang.followup.second_callback import PURPOSE as SECOND_CALLBACK
from huifang.followup.second_callback import open_round_for_contact
from huifang.followup.tickets import record_second_callback_result
from huifang.ivr import result as ivr
from huifang.ivr.actions import Action
from huifang.ivr.codec import event_to_dict, replay
from huifang.ivr.events import CallStarted, Event, RecordingFinished
from huifang.ivr.interpreter import Session as IvrSession
from huifang.ivr.interpreter import classifier_matcher
from huifang.ivr.script import Script, parse_script
from huifang.ivr.summary import unsatisfied_summary
from huifang.ivr.template import TemplateError, render_template
from huifang.logs import attempt_changed
from huifang.speech.reader import Reader
from huifang.speech.recognizer import Transcript
from huifang.telephony.base import SurveyCall, SurveyCallFactory

log = logging.getLogger(__name__)


class Transcriber(Protocol):
    """Speech → text for a recorded complaint (`huifang.speech.vosk.SpeechPool` is one)."""

    async def transcribe_file(self, path: Path, language: str) -> Transcript: ...


#: complaint text → categories (attitude, arrival_time, handling, other)
Tagger = Callable[[str, str], Iterable[str]]
_GRADED = (Satisfaction.satisfied, Satisfaction.basically_satisfied, Satisfaction.unsatisfied)
#: the dimension of the second-callback script's question whose answer settles the ticket
_VERDICT = "second_callback"

# the statements of every step, built once: values come as parameters, so each executes
# from SQLAlchemy's compiled cache without a statement being rebuilt and keyed per step
_ATTEMPTS = CallAttempt.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
_APPEND_TO_LOG = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("attempt_id"))
    .where(func.json_array_length(_ATTEMPTS.c.ivr_log) == bindparam("length"))
    .values(ivr_log=bindparam("extended", type_=_ATTEMPTS.c.ivr_log.type))
)
_CAMPAIGNS = Campaign.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
#: the calling rules a call's end applies (the campaign's other columns are not needed)
_CAMPAIGN_RULES = select(_CAMPAIGNS.c.rules).where(_CAMPAIGNS.c.id == bindparam("campaign_id"))
_INSERT_ANSWER = insert(Answer.__table__)  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
_INSERT_RECEIPT = insert(WebhookReceipt.__table__)  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers
#: the columns of an answer a step stores, besides `created_at`
_ANSWER_FIELDS = (
    "contact_id", "incident_id", "attempt_id", "question_id", "dimension", "outcome", "value",
    "mode", "confidence", "recording_id", "transcript", "categories", "reader_version",
)  # fmt: skip
_FIELDS = ", ".join(_ANSWER_FIELDS)
#: a step of a call's middle on PostgreSQL (a key, a phrase: no recording, no review, not the
#: end) in one round trip: the receipt claimed (`claimed` false: applied before), the log
#: appended under compare-and-set on its length (`appended` false: it moved on elsewhere),
#: the step's new answers stored from a JSON array, only once both held; the caller rolls
#: back a step that did not append. The same guarded writes as the statements above.
_MIDDLE_STEP = text(f"""
WITH receipt AS (
    INSERT INTO webhook_receipts (key, received_at)
    SELECT CAST(:key AS VARCHAR), :now WHERE CAST(:key AS VARCHAR) IS NOT NULL
    ON CONFLICT (key) DO NOTHING
    RETURNING id
), appended AS (
    UPDATE call_attempts SET ivr_log = CAST(:extended AS JSON)
    WHERE id = :attempt_id AND json_array_length(ivr_log) = :length
      AND (CAST(:key AS VARCHAR) IS NULL OR EXISTS (SELECT FROM receipt))
    RETURNING id
), answered AS (
    INSERT INTO answers (created_at, {_FIELDS})
    SELECT :now, {_FIELDS}
    FROM appended, json_populate_recordset(NULL::answers, CAST(:answers AS JSON))
)
SELECT EXISTS (SELECT FROM receipt) AS claimed, EXISTS (SELECT FROM appended) AS appended
""").bindparams(
    # JSON values go through the engine's serializer, as every JSON column's do
    bindparam("now", type_=UTCDateTime()),
    bindparam("extended", type_=JSON()),
    bindparam("answers", type_=JSON()),
)


def default_tagger(text: str, language: str) -> list[str]:
    from huifang.speech.classify import tag_complaint

    return [str(tag.category) for tag in tag_complaint(text, language)]


@dataclass(frozen=True, slots=True)
class _Step:
    """One event fed, with what it changed, on its way to the database."""

    event: Event
    entry: dict[str, Any]
    new_answers: Sequence[ivr.Answer]
    result: ivr.SurveyResult
    idempotency_key: str | None
    #: the provider's name and id of the call, stored as the call is answered (first step)
    provider: str = ""
    provider_call_id: str = ""


#: everything a call needs to resume, in one query (on every survey call's first turn)
_CALL_ROW = (
    select(CallAttempt, Contact, Incident, col(Campaign.script_version_id), col(Unit.name))
    .join(Contact, col(Contact.id) == col(CallAttempt.contact_id))
    .join(Incident, col(Incident.id) == col(Contact.incident_id))
    .join(Campaign, col(Campaign.id) == col(CallAttempt.campaign_id))
    .outerjoin(Unit, col(Unit.id) == col(Incident.unit_id))
    .where(col(CallAttempt.id) == bindparam("attempt_id"))
)


def _first_answers(answers: Sequence[ivr.Answer], stored: int) -> list[ivr.Answer]:
    """The answers after the first `stored` that answer a question for the first time.

    The stored answers of a call are exactly those of its stored log (each step stores its
    answers in its own transaction), so this is what is new to the database; a question a
    script asks again keeps its first answer (one answer per attempt and question).
    """
    answered = {answer.question_id for answer in answers[:stored]}
    first: list[ivr.Answer] = []
    for answer in answers[stored:]:
        if answer.question_id not in answered:
            answered.add(answer.question_id)
            first.append(answer)
    return first


def _claim_receipt(connection: Connection, key: str, now: datetime) -> None:
    """Record `key` in this step's transaction, or raise AlreadyApplied if it was before."""
    try:
        connection.execute(_INSERT_RECEIPT, {"key": key, "received_at": now})
    except IntegrityError:
        # the step's first statement: the transaction it spoils is rolled back whole
        raise AlreadyApplied(f"{key} was applied already") from None


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
        logged: list[dict[str, Any]],
        last_actions: list[Action],
        *,
        variables: dict[str, str],
        speech: Transcriber | None,
        tagger: Tagger,
        reader: Reader,
    ) -> None:
        self._runtime = runtime
        self._context = context
        self._session = session
        #: the stored IVR log as this copy knows it (it extends it only under a length check)
        self._log = logged
        self._last_actions = last_actions
        #: what the script's prompts are filled with (the incident's date, unit …)
        self._variables = variables
        self._speech = speech
        self._tagger = tagger
        self._reader = reader
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

    async def start(
        self, *, idempotency_key: str | None = None, provider: str = "", provider_call_id: str = ""
    ) -> Sequence[Action]:
        if self._log:
            return list(self._last_actions)  # re-entered: carry on where the call was
        return await self._feed(CallStarted(), idempotency_key, provider, provider_call_id)

    async def feed(self, event: Event, *, idempotency_key: str | None = None) -> Sequence[Action]:
        return await self._feed(event, idempotency_key)

    async def _feed(
        self,
        event: Event,
        idempotency_key: str | None,
        provider: str = "",
        provider_call_id: str = "",
    ) -> Sequence[Action]:
        if self.finished:
            return []
        if isinstance(event, RecordingFinished) and not event.transcript:
            event = await self._transcribed(event)
        answers_before = len(self._session.result().answers)
        actions = self._session.feed(event)
        result = self._session.result()
        entry = event_to_dict(event)
        new_answers = _first_answers(result.answers, answers_before)
        step = _Step(event, entry, new_answers, result, idempotency_key, provider, provider_call_id)
        try:
            await self._runtime.run_db(
                retry_transient, functools.partial(self._persist, step),
                what=f"call attempt {self._context.attempt_id}: survey step",
            )  # fmt: skip
        except BaseException:
            # the DB refused the step: the in-memory session is ahead of the log now
            self._session.finished = True
            raise
        self._log.append(entry)
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
        self._words = list(transcript.as_dict()["words"])
        return RecordingFinished(
            path=event.path,
            duration_seconds=event.duration_seconds,
            transcript=transcript.text,
            confidence=transcript.confidence,
        )

    # --- one transaction per event --------------------------------------------------------

    def _persist(self, step: _Step, try_number: int = 1) -> None:
        if self._in_the_middle(step):
            self._persist_middle(step, try_number)
            return
        now = self._runtime.clock.now()
        ctx = self._context
        with session_scope(self._runtime.engine) as db:
            connection = db.connection()
            if try_number > 1 and self._landed(connection, step):
                return  # the last try committed before its connection dropped
            if step.idempotency_key is not None:
                _claim_receipt(connection, step.idempotency_key, now)
            self._append_log(connection, step.entry)
            if isinstance(step.event, CallStarted):
                claims.note_progress(
                    db, ctx.attempt_id, AttemptEvent.answer, now=now,
                    provider=step.provider, provider_call_id=step.provider_call_id,
                )  # fmt: skip
            recording_id = None
            if isinstance(step.event, RecordingFinished):
                recording_id = self._store_recording(db, step.event, now)
            for answer in step.new_answers:
                row = self._answer_row(answer, recording_id)
                connection.execute(_INSERT_ANSWER, {**row, "created_at": now})
                if self._for_review(answer):
                    self._to_review(db, answer, recording_id, now)
            if self._session.finished:
                self._finish(db, step.result, now)

    def _in_the_middle(self, step: _Step) -> bool:
        """Whether `step` is one `_MIDDLE_STEP` stores: PostgreSQL (SQLite takes the
        statements one by one), and nothing but the receipt, the log and plain answers."""
        return (
            self._runtime.engine.dialect.name == "postgresql"
            and not isinstance(step.event, CallStarted | RecordingFinished)
            and not self._session.finished
            and not any(self._for_review(answer) for answer in step.new_answers)
        )

    def _persist_middle(self, step: _Step, try_number: int) -> None:
        attempt_id = self._context.attempt_id
        with self._runtime.engine.begin() as connection:
            if try_number > 1 and self._landed(connection, step):
                return  # the last try committed before its connection dropped
            rows = [self._answer_row(answer, None) for answer in step.new_answers]
            stored = connection.execute(
                _MIDDLE_STEP,
                {
                    "key": step.idempotency_key,
                    "now": self._runtime.clock.now(),
                    "attempt_id": attempt_id,
                    "length": len(self._log),
                    "extended": [*self._log, step.entry],
                    "answers": rows,
                },
            ).one()
            if step.idempotency_key is not None and not stored.claimed:
                raise AlreadyApplied(f"{step.idempotency_key} was applied already")
            if not stored.appended:
                raise Conflict(f"call attempt {attempt_id}: its IVR log moved on elsewhere")

    def _for_review(self, answer: ivr.Answer) -> bool:
        """The citizen's words ended a question unanswered: an agent reads them (a second
        callback left unclear stays with its ticket's agent instead: `_settle_ticket`)."""
        return (
            answer.outcome == Satisfaction.unclear
            and bool(answer.transcript)
            and self._context.purpose != SECOND_CALLBACK
        )

    def _landed(self, connection: Connection, step: _Step) -> bool:
        """Whether the stored log already ends with this step, one past the log we hold."""
        stored = connection.execute(
            select(_ATTEMPTS.c.ivr_log).where(_ATTEMPTS.c.id == self._context.attempt_id)
        ).scalar_one()
        return len(stored) == len(self._log) + 1 and stored[-1] == step.entry

    def _append_log(self, connection: Connection, entry: dict[str, Any]) -> None:
        """Append under compare-and-set on the log's length: of two processes (or threads)
        feeding the same call at once, exactly one extends it; the other gets Conflict.
        Logs only ever grow this way, so a stored log of our length is the one we hold."""
        attempt_id = self._context.attempt_id
        extended = connection.execute(
            _APPEND_TO_LOG,
            {"attempt_id": attempt_id, "length": len(self._log), "extended": [*self._log, entry]},
        )
        if extended.rowcount != 1:
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

    def _answer_row(self, answer: ivr.Answer, recording_id: int | None) -> dict[str, Any]:
        """The answer's `_ANSWER_FIELDS`."""
        ctx = self._context
        categories: list[str] = []
        if answer.transcript and answer.outcome is None:
            categories = list(self._tagger(answer.transcript, ctx.script.language))
        return {
            "contact_id": ctx.contact_id,
            "incident_id": ctx.incident_id,
            "attempt_id": ctx.attempt_id,
            "question_id": answer.question_id,
            "dimension": answer.dimension,
            "outcome": str(answer.outcome) if answer.outcome is not None else None,
            "value": answer.value,
            "mode": str(answer.mode),
            "confidence": answer.confidence,
            "recording_id": recording_id if answer.recording_path else None,
            "transcript": answer.transcript,
            "categories": categories,
            "reader_version": self._reader.version if answer.mode == "speech" else None,
        }

    def _to_review(
        self, db: Session, answer: ivr.Answer, recording_id: int | None, now: datetime
    ) -> None:
        """The citizen spoke but the question ended unanswered: an agent reads their words."""
        ctx = self._context
        language = ctx.script.language
        reading = self._reader.read(answer.transcript, language)
        open_voice_review(
            db, contact_id=ctx.contact_id, incident_id=ctx.incident_id,
            attempt_id=ctx.attempt_id, question_id=answer.question_id,
            question=self._question_text(answer.question_id),
            language=language, text=answer.transcript, recording_id=recording_id,
            reason=reading.reason if reading.review else UNCLEAR_AFTER_REASK,
            reader_label=reading.label.value, reader_confidence=reading.confidence,
            reader_version=reading.version, now=now,
        )  # fmt: skip

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
        campaign_rules = (
            db.connection().execute(_CAMPAIGN_RULES, {"campaign_id": ctx.campaign_id}).scalar_one()
        )
        rules = DialRules.from_campaign(campaign_rules, self._runtime.settings)
        ended = claims.end_attempt(
            db, ctx.attempt_id, outcome, now=now, rules_for=lambda _id: rules,
            contact_outcome=str(result.outcome) if outcome == AttemptState.completed else None,
        )  # fmt: skip
        if ended:
            attempt_changed(log, ctx.attempt_id, outcome)
        else:
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
        unsatisfied reopens it with the citizen's words; an unclear or missing answer leaves
        the round open, for an agent once the calls are done."""
        verdict = next((a for a in result.answers if a.dimension == _VERDICT), None)
        if verdict is None or verdict.outcome is None or verdict.outcome not in _GRADED:
            return
        current = open_round_for_contact(db, self._context.contact_id)
        if current is None:
            return  # settled already (a replayed ending), by an agent, or the report went back
        record_second_callback_result(
            db, current.ticket_id, verdict.outcome, now, None,
            question=self._question_text(verdict.question_id),
            words=" / ".join(a.transcript for a in result.answers if a.transcript),
            attempt_id=self._context.attempt_id,
        )  # fmt: skip

    def _question_text(self, question_id: str) -> str:
        """The question as the citizen heard it."""
        script = self._context.script
        for question in script.questions:
            if question.id == question_id:
                text = question.prompt.text_for(script.language) or ""
                try:
                    return render_template(text, self._variables)
                except TemplateError:
                    return text
        return ""

    def _escalate(self, db: Session, result: ivr.SurveyResult, now: datetime) -> None:
        ctx = self._context
        reasons = [a for a in result.answers if a.outcome is None and a.transcript]
        unhappy = [a for a in result.answers if a.outcome == Satisfaction.unsatisfied]
        categories: list[str] = []
        for reason in reasons:
            categories += self._tagger(reason.transcript, ctx.script.language)
        categories += [
            a.dimension for a in unhappy if a.dimension in ("attitude", "arrival_time", "handling")
        ]
        summary = " / ".join(r.transcript for r in reasons) or unsatisfied_summary(
            ctx.script, [a.question_id for a in unhappy]
        )
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
    complaints; `classifier` tags their categories (default: `speech.classify.tag_complaint`);
    spoken answers are read by the runtime's reply reader."""
    scripts: dict[int, Script] = {}
    tagger = classifier or default_tagger
    reader = runtime.reader()

    def load(attempt_id: int) -> tuple[_CallContext, dict[str, str], list[dict[str, Any]]]:
        with Session(runtime.engine) as db:
            row = db.execute(_CALL_ROW, {"attempt_id": attempt_id}).first()
            if row is None:
                if db.get(CallAttempt, attempt_id) is None:
                    raise NotFound(f"call attempt {attempt_id} does not exist")
                raise NotFound(f"call attempt {attempt_id}: its contact or incident is gone")
            attempt, contact, incident, campaign_version_id, unit_name = row
            version_id = attempt.script_version_id or campaign_version_id
            if version_id not in scripts:
                version = db.get(ScriptVersion, version_id)
                if version is None:
                    raise NotFound(f"script version {version_id} does not exist")
                scripts[version_id] = parse_script(version.source_yaml)
        script = scripts[version_id]
        variables = script_variables(
            incident, unit_name=unit_name or "", language=script.language, tz=runtime.settings.tz
        )
        context = _CallContext(
            attempt.id, contact.id, incident.id, attempt.campaign_id, contact.phone, script,
            attempt.purpose,
        )  # fmt: skip
        return context, variables, list(attempt.ivr_log)

    async def factory(attempt_id: int) -> SurveyCall:
        context, variables, logged = await runtime.run_db(
            retry_transient, lambda _try: load(attempt_id),
            what=f"call attempt {attempt_id}: survey start",
        )  # fmt: skip
        matcher = classifier_matcher(reader.read, context.script.language)
        session, actions = replay(context.script, variables, logged, speech_matcher=matcher)
        return DbSurveyCall(
            runtime, context, session, logged, actions, variables=variables, speech=speech,
            tagger=tagger, reader=reader,
        )  # fmt: skip

    return factory
