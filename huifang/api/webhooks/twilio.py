"""Twilio's webhooks: the voice turns of a survey call, call status, recordings, SMS.

Rules kept here:
- every request must carry a valid `X-Twilio-Signature` for the URL Twilio called (our
  public base URL + path + query): otherwise 403 and nothing is read or written;
- the voice webhook is one turn of the IVR: `?attempt=A&step=N` says which call and which
  turn; Twilio's fields become one IVR event fed to the call's `SurveyCall`, and its actions
  come back as TwiML whose input verb points at turn N+1;
- each (CallSid, step) is applied once: a retried turn gets the same TwiML without the event
  being fed again (from memory in the process that answered it; anywhere else the turn's
  receipt, stored in `webhook_receipts` by the turn's own transaction, refuses a second
  feed); turns of one call run one at a time per process;
- a status report is applied once per (CallSid, status) and never moves an attempt
  backwards (guarded transitions); `completed` in mid-script feeds `HungUp`;
- a recording is fetched after Twilio says it is ready, in a background task, then
  transcribed and classified; nothing slow runs in the request path.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from huifang.api.deps import RuntimeDep
from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.domain.models import Answer, CallAttempt, Escalation, Recording, WebhookReceipt
from huifang.domain.states import AttemptEvent, AttemptState
from huifang.errors import AlreadyApplied, Conflict, HuifangError
from huifang.ivr.actions import Action, Prompt
from huifang.ivr.events import HungUp
from huifang.sms.registry import send_reply
from huifang.telephony.base import CallEvent, CallProgress, SurveyCall, SurveyCallFactory
from huifang.telephony.twilio.provider import TwilioProvider, progress_of
from huifang.telephony.twilio.signature import SIGNATURE_HEADER, is_signed_by_twilio, public_url
from huifang.telephony.twilio.twiml import TurnUrls, render_hangup, render_turn, turn_event

log = logging.getLogger(__name__)

#: runtime.services keys this router reads (registered by bootstrap, the demo or tests)
SURVEY_FACTORY_SERVICE = "twilio_survey_call_factory"
TELEPHONY_SERVICE = "telephony"
MEDIA_CLIENT_SERVICE = "twilio_media_client"
TURN_LOCKS_SERVICE = "twilio_turn_locks"
LIVE_CALLS_SERVICE = "twilio_live_calls"

#: how long a recording's fetch waits for the voice turn that stores its row
RECORDING_ROW_WAIT = (0.2, 0.5, 1.0, 2.0, 4.0)

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])
TWIML = "application/xml"


async def signed_form(request: Request, runtime: RuntimeDep) -> FormData:
    """The request's form fields, once its signature is proven to be Twilio's."""
    form = await request.form()
    url = public_url(runtime.settings.public_base_url, request.url.path, request.url.query)
    token = runtime.settings.twilio_auth_token.get_secret_value()
    if not is_signed_by_twilio(token, url, form, request.headers.get(SIGNATURE_HEADER)):
        raise HTTPException(status_code=403, detail="X-Twilio-Signature does not match")
    return form


SignedForm = Annotated[FormData, Depends(signed_form)]


# --- voice -------------------------------------------------------------------------------


@router.post("/voice")
async def voice(runtime: RuntimeDep, form: SignedForm, attempt: int, step: int = 0) -> Response:
    """One turn of a survey call: feed what the citizen did, answer with the next TwiML."""
    # one turn of a call at a time in this process: a retry that overtakes a slow original
    # waits for it, then finds its receipt (across processes the survey's log check decides)
    async with _turn_lock(runtime, attempt):
        document = await _turn(runtime, form, attempt, step)
    return Response(content=document, media_type=TWIML)


def _voice_receipt(form: FormData, step: int) -> str:
    return f"twilio:voice:{form.get('CallSid', '')}:{step}"


async def _turn(runtime: Runtime, form: FormData, attempt: int, step: int) -> str:
    receipt = _voice_receipt(form, step)
    urls = turn_urls(runtime.settings.public_base_url, attempt, step + 1)
    answered_by = str(form.get("AnsweredBy", ""))
    if step == 0 and progress_of("in-progress", answered_by) is CallProgress.machine:
        # no survey for a machine; ending the attempt is guarded, so a retry changes nothing
        cause = f"answered_by:{answered_by}"
        await runtime.run_db(_end_attempt, runtime, attempt, AttemptState.machine, cause)
        return render_hangup()
    calls = _live_calls(runtime)
    said = calls.said(attempt, receipt)
    if said is not None:
        return said  # a retry of a turn this process answered: the very same document
    call = await calls.get(attempt)
    try:
        try:
            actions = await _apply_turn(runtime, call, form, attempt, step, receipt)
        except Conflict:
            # the stored log moved on without this copy (another replica served turns, or
            # won a race for this very turn): carry on from the stored log
            calls.forget(attempt)
            call = await calls.get(attempt)
            actions = await _apply_turn(runtime, call, form, attempt, step, receipt)
    except AlreadyApplied:
        # a retry of a turn served elsewhere (its receipt is stored): render where the call is
        calls.forget(attempt)
        call = await calls.get(attempt)
        actions = await call.start()
    except BaseException:
        calls.forget(attempt)  # its in-memory session may be ahead of the stored log
        raise
    document = _render(actions, urls)
    if call.finished:
        calls.forget(attempt)
    else:
        calls.remember(attempt, receipt, document)
    return document


async def _apply_turn(
    runtime: Runtime, call: SurveyCall, form: FormData, attempt: int, step: int, receipt: str
) -> Sequence[Action]:
    """Feed the turn's event; its receipt is stored in the same transaction."""
    if call.finished:
        return await call.start()  # a retried last turn: the closing again, nothing fed
    if step == 0:
        # the call sid (for `lookup`) is stored by the first turn's own transaction
        call_sid = str(form.get("CallSid", ""))
        return await call.start(
            idempotency_key=receipt, provider="twilio", provider_call_id=call_sid
        )
    path = recording_path(runtime.settings.recordings_dir, attempt, step)
    fields = {name: str(value) for name, value in form.items()}
    return await call.feed(turn_event(fields, recording_path=str(path)), idempotency_key=receipt)


class LiveCalls:
    """The survey calls this process is serving, kept between turns.

    Rebuilding a call replays its stored log; keeping it saves that on every turn. Safe
    because the call checks the log it extends is the one it knows (`Conflict` otherwise:
    another replica moved it), and a call that failed or ended is dropped at once.
    """

    def __init__(self, factory: SurveyCallFactory, capacity: int = 10_000) -> None:
        self._factory = factory
        self._capacity = capacity
        self._calls: OrderedDict[int, SurveyCall] = OrderedDict()
        #: the last turn each kept call answered: its receipt key and document
        self._last_said: dict[int, tuple[str, str]] = {}

    async def get(self, attempt_id: int) -> SurveyCall:
        call = self._calls.get(attempt_id)
        if call is None:
            call = await self._factory(attempt_id)
            self._calls[attempt_id] = call
            if len(self._calls) > self._capacity:
                oldest, _ = self._calls.popitem(last=False)
                self._last_said.pop(oldest, None)
        self._calls.move_to_end(attempt_id)
        return call

    def forget(self, attempt_id: int) -> None:
        self._calls.pop(attempt_id, None)
        self._last_said.pop(attempt_id, None)

    def remember(self, attempt_id: int, receipt: str, document: str) -> None:
        self._last_said[attempt_id] = (receipt, document)

    def said(self, attempt_id: int, receipt: str) -> str | None:
        """The document this process answered `receipt` with, if it was the call's last turn."""
        last = self._last_said.get(attempt_id)
        return last[1] if last is not None and last[0] == receipt else None


def _live_calls(runtime: Runtime) -> LiveCalls:
    calls: LiveCalls | None = runtime.services.get(LIVE_CALLS_SERVICE)
    if calls is None:
        calls = runtime.services[LIVE_CALLS_SERVICE] = LiveCalls(survey_call_factory(runtime))
    return calls


def _turn_lock(runtime: Runtime, attempt_id: int) -> asyncio.Lock:
    locks: weakref.WeakValueDictionary[int, asyncio.Lock] = runtime.services.setdefault(
        TURN_LOCKS_SERVICE, weakref.WeakValueDictionary()
    )
    lock = locks.get(attempt_id)
    if lock is None:
        lock = locks[attempt_id] = asyncio.Lock()
    return lock


def _render(actions: Sequence[Action], urls: TurnUrls) -> str:
    """The turn's TwiML; a finished survey (no actions left) hangs up."""
    return render_turn(actions, urls, _published_audio) if actions else render_hangup()


def _published_audio(prompt: Prompt) -> str | None:
    """A prompt recording Twilio can fetch itself (an https URL); others are spoken."""
    return prompt.audio if prompt.audio and prompt.audio.startswith("https://") else None


def turn_urls(public_base_url: str, attempt_id: int, step: int) -> TurnUrls:
    query = f"attempt={attempt_id}&step={step}"
    return TurnUrls(
        next_turn=public_url(public_base_url, "/webhooks/twilio/voice", query),
        recording_status=public_url(public_base_url, "/webhooks/twilio/recording", query),
    )


def recording_path(recordings_dir: Path, attempt_id: int, step: int) -> Path:
    """Where the recording of an attempt's turn is stored (the turn and the fetch agree)."""
    return recordings_dir / "twilio" / f"{attempt_id}-{step}.wav"


def survey_call_factory(runtime: Runtime) -> SurveyCallFactory:
    """The survey calls of Twilio turns. Recordings are fed before they are fetched, so this
    factory transcribes nothing itself: the recording webhook does, once the audio is here."""
    factory: SurveyCallFactory | None = runtime.services.get(SURVEY_FACTORY_SERVICE)
    if factory is None:
        from huifang.dialer.survey import make_survey_call_factory

        factory = runtime.services[SURVEY_FACTORY_SERVICE] = make_survey_call_factory(runtime)
    return factory


# --- call status -------------------------------------------------------------------------


@router.post("/status", status_code=204)
async def status(runtime: RuntimeDep, form: SignedForm, attempt: int) -> Response:
    """A call's progress: ringing, answered, machine, completed, busy, no answer, failed."""
    call_sid = str(form.get("CallSid", ""))
    call_status = str(form.get("CallStatus", ""))
    receipt = f"twilio:status:{call_sid}:{call_status}"
    if await runtime.run_db(_has_receipt, runtime, receipt):
        return Response(status_code=204)
    progress = progress_of(call_status, str(form.get("AnsweredBy", "")))
    cause = f"twilio:{call_status}" + (f":{form['ErrorCode']}" if form.get("ErrorCode") else "")
    if progress is CallProgress.completed:
        await _end_of_call(runtime, attempt)
    else:
        await runtime.run_db(_apply_progress, runtime, attempt, progress, call_sid, cause)
    provider = runtime.services.get(TELEPHONY_SERVICE)
    if isinstance(provider, TwilioProvider) and progress is not None:
        provider.report(CallEvent(attempt, progress, runtime.clock.now(), call_sid, cause))
    await runtime.run_db(_store_receipt, runtime, receipt)
    return Response(status_code=204)


async def _end_of_call(runtime: Runtime, attempt_id: int) -> None:
    """The call is over. A survey cut short hears `HungUp` (it ends the attempt itself)."""
    state, log_length = await runtime.run_db(_attempt_state, runtime, attempt_id)
    if state == AttemptState.answered and log_length:
        calls = _live_calls(runtime)
        async with _turn_lock(runtime, attempt_id):
            call = await calls.get(attempt_id)
            calls.forget(attempt_id)
            if not call.finished:
                try:
                    await call.feed(HungUp())
                except Conflict:
                    pass  # a turn landed elsewhere at the same moment; lease recovery settles it
    elif state == AttemptState.answered:
        await runtime.run_db(_end_attempt, runtime, attempt_id, AttemptState.abandoned, "")
    elif state in (AttemptState.dialing, AttemptState.ringing):
        cause = "twilio:completed_without_answer"
        await runtime.run_db(_end_attempt, runtime, attempt_id, AttemptState.failed, cause)


def _apply_progress(
    runtime: Runtime, attempt_id: int, progress: CallProgress | None, call_sid: str, cause: str
) -> None:
    from huifang.dialer import claims

    now = runtime.clock.now()
    with session_scope(runtime.engine) as db:
        if progress is None:  # queued / initiated: the sid lets `lookup` find a lost create
            db.exec(_call_sid_update(attempt_id, call_sid))
        elif progress is CallProgress.ringing:
            claims.note_progress(
                db,
                attempt_id,
                AttemptEvent.ring,
                now=now,
                provider="twilio",
                provider_call_id=call_sid,
            )
        elif progress is CallProgress.answered:
            claims.note_progress(
                db,
                attempt_id,
                AttemptEvent.answer,
                now=now,
                provider="twilio",
                provider_call_id=call_sid,
            )
    if progress is not None and progress.is_final:
        _end_attempt(runtime, attempt_id, AttemptState(progress), cause)


def _end_attempt(runtime: Runtime, attempt_id: int, outcome: AttemptState, cause: str) -> None:
    from huifang.dialer import claims
    from huifang.dialer.policy import DialRules

    with session_scope(runtime.engine) as db:

        def rules(campaign_id: int) -> DialRules:
            campaign = claims.load_campaigns(db, [campaign_id])[campaign_id]
            return DialRules.from_campaign(campaign.rules, runtime.settings)

        claims.end_attempt(
            db, attempt_id, outcome, now=runtime.clock.now(), rules_for=rules, cause=cause
        )


def _call_sid_update(attempt_id: int, call_sid: str) -> Any:
    """Name the attempt's Twilio call, once: an identifier, not a state, so no lifecycle."""
    return (
        update(CallAttempt)
        .where(col(CallAttempt.id) == attempt_id, col(CallAttempt.provider_call_id) == "")
        .values(provider="twilio", provider_call_id=call_sid)
    )


def _attempt_state(runtime: Runtime, attempt_id: int) -> tuple[str | None, int]:
    with Session(runtime.engine) as db:
        attempt = db.get(CallAttempt, attempt_id)
        return (attempt.state, len(attempt.ivr_log)) if attempt else (None, 0)


# --- recordings --------------------------------------------------------------------------


@router.post("/recording", status_code=204)
async def recording(
    runtime: RuntimeDep, form: SignedForm, background: BackgroundTasks, attempt: int, step: int
) -> Response:
    """A recording is ready at Twilio: fetch, transcribe and classify it after answering."""
    recording_sid = str(form.get("RecordingSid", ""))
    if form.get("RecordingStatus", "completed") != "completed" or not recording_sid:
        return Response(status_code=204)
    if not await runtime.run_db(_store_receipt, runtime, f"twilio:recording:{recording_sid}"):
        return Response(status_code=204)
    path = recording_path(runtime.settings.recordings_dir, attempt, step)
    background.add_task(fetch_recording, runtime, attempt, path, str(form.get("RecordingUrl", "")))
    return Response(status_code=204)


async def fetch_recording(runtime: Runtime, attempt_id: int, path: Path, media_url: str) -> None:
    """Download the recording to `path`, then transcribe it (Vosk) and classify the text."""
    settings = runtime.settings
    client: httpx.AsyncClient | None = runtime.services.get(MEDIA_CLIENT_SERVICE)
    owned = client is None
    client = client or httpx.AsyncClient(timeout=settings.twilio_timeout_seconds)
    try:
        response = await client.get(
            media_url + ".wav",
            auth=(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()),
            follow_redirects=True,
        )
        response.raise_for_status()
    except httpx.HTTPError:
        log.exception("attempt %s: the recording at %s could not be fetched", attempt_id, media_url)
        return
    finally:
        if owned:
            await client.aclose()
    await asyncio.to_thread(_write_atomically, path, response.content)
    for wait in (0.0, *RECORDING_ROW_WAIT):
        await asyncio.sleep(wait)
        language = await runtime.run_db(_recording_language, runtime, attempt_id, path)
        if language is not None:
            break
    else:
        log.warning("attempt %s: no recording row for %s; left untranscribed", attempt_id, path)
        return
    try:
        transcript = await runtime.speech_pool().transcribe_file(path, language)
    except HuifangError as refused:  # no model for the language, audio it cannot read
        log.warning("attempt %s: recording kept untranscribed: %s", attempt_id, refused)
        return
    await runtime.run_db(_apply_transcript, runtime, attempt_id, path, transcript, language)


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(content)
    partial.replace(path)


def _recording_language(runtime: Runtime, attempt_id: int, path: Path) -> str | None:
    with Session(runtime.engine) as db:
        row = db.exec(_recording_query(attempt_id, path)).first()
        return row.language if row else None


def _recording_query(attempt_id: int, path: Path) -> Any:
    return select(Recording).where(
        col(Recording.attempt_id) == attempt_id, col(Recording.path) == str(path)
    )


def _apply_transcript(
    runtime: Runtime, attempt_id: int, path: Path, transcript: Any, language: str
) -> None:
    """The transcript joins the recording, the answer it recorded, and the escalation."""
    from huifang.speech.classify import tag_complaint

    categories = list(
        dict.fromkeys(str(tag.category) for tag in tag_complaint(transcript.text, language))
    )
    with session_scope(runtime.engine) as db:
        row = db.exec(_recording_query(attempt_id, path)).first()
        if row is None:
            return
        words = transcript.as_dict()["words"]
        db.exec(
            update(Recording)
            .where(col(Recording.id) == row.id)
            .values(transcript=transcript.text, words=words, confidence=transcript.confidence)
        )
        db.exec(
            update(Answer)
            .where(col(Answer.recording_id) == row.id)
            .values(transcript=transcript.text, categories=categories)
        )
        escalation = db.exec(
            select(Escalation).where(col(Escalation.attempt_id) == attempt_id)
        ).first()
        if escalation is not None and transcript.text:
            escalation.summary = transcript.text
            escalation.categories = list(dict.fromkeys([*escalation.categories, *categories]))
            db.add(escalation)


# --- SMS ---------------------------------------------------------------------------------


@router.post("/sms")
async def sms_webhook(
    runtime: RuntimeDep, form: SignedForm, background: BackgroundTasks, sms: int | None = None
) -> Response:
    """A citizen's reply (has a `Body`), or a delivery report on one of our messages."""
    from huifang.sms.survey import handle_delivery_status, handle_inbound_sms

    message_sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    now = runtime.clock.now()
    if "Body" not in form:
        report = str(form.get("MessageStatus") or form.get("SmsStatus") or "")

        def apply_report() -> None:
            with session_scope(runtime.engine) as db:
                handle_delivery_status(
                    db, provider_message_id=message_sid, status=report, now=now, sms_id=sms
                )

        await runtime.run_db(apply_report)
        return Response(status_code=204)

    def apply_reply() -> int | None:
        with session_scope(runtime.engine) as db:
            outcome = handle_inbound_sms(
                db,
                phone=str(form.get("From", "")),
                body=str(form.get("Body", "")),
                provider_message_id=message_sid,
                now=now,
                settings=runtime.settings,
                reader=runtime.reader(),
            )
            return outcome.reply_sms_id

    reply_id = await runtime.run_db(apply_reply)
    if reply_id is not None:
        background.add_task(send_reply, runtime, reply_id)
    return _twiml("<?xml version='1.0' encoding='UTF-8'?><Response />")


# --- receipts ----------------------------------------------------------------------------


# receipts are on every turn's path: plain Core statements, no ORM unit of work
_RECEIPTS = WebhookReceipt.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__ to type checkers


def _has_receipt(runtime: Runtime, key: str) -> bool:
    with runtime.engine.connect() as connection:
        query = select(_RECEIPTS.c.id).where(_RECEIPTS.c.key == key)
        return connection.execute(query).first() is not None


def _store_receipt(runtime: Runtime, key: str) -> bool:
    """Record that `key` was applied; False when it had been already."""
    try:
        with runtime.engine.begin() as connection:
            connection.execute(insert(_RECEIPTS).values(key=key, received_at=runtime.clock.now()))
    except IntegrityError:
        return False
    return True


def _twiml(document: str) -> Response:
    return Response(content=document, media_type=TWIML)
