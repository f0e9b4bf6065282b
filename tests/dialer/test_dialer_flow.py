"""The dialer end to end on the simulated line: claims, survey storage, outcomes, retries."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.models import Answer, CallAttempt, Contact, Escalation, OptOut
from tests.dialer.conftest import CampaignFactory, WorkerFactory, db_session, phones


def attempts_of(runtime: Runtime, phone: str) -> list[CallAttempt]:
    with db_session(runtime) as db:
        contact = db.exec(select(Contact).where(Contact.phone == phone)).one()
        return list(
            db.exec(
                select(CallAttempt)
                .where(CallAttempt.contact_id == contact.id)
                .order_by(CallAttempt.id)
            )
        )


def contact_of(runtime: Runtime, phone: str) -> Contact:
    with db_session(runtime) as db:
        return db.exec(select(Contact).where(Contact.phone == phone)).one()


async def test_satisfied_citizen_completes_and_answers_are_stored(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, _ = make_worker({phone: "satisfied"})
    await worker.run_until_idle()
    (attempt,) = attempts_of(runtime, phone)
    assert attempt.state == "completed"
    contact = contact_of(runtime, phone)
    assert (contact.state, contact.outcome) == ("answered", "satisfied")
    with db_session(runtime) as db:
        answers = db.exec(select(Answer).where(Answer.attempt_id == attempt.id)).all()
    assert {a.question_id for a in answers} == {
        "confirm",
        "attitude",
        "arrival_time",
        "handling",
        "overall",
    }


async def test_complaint_is_recorded_and_escalated_once(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, _ = make_worker({phone: "complains"})
    await worker.run_until_idle()
    with db_session(runtime) as db:
        escalations = db.exec(select(Escalation)).all()
        reason = db.exec(select(Answer).where(Answer.question_id == "reason")).one()
    assert len(escalations) == 1 and escalations[0].origin == "voice"
    assert "态度" in reason.transcript and reason.categories == ["attitude"]


async def test_busy_is_retried_after_the_busy_delay(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, provider = make_worker({phone: "busy_then_satisfied"})
    await worker.run_until_idle()
    first, retry = attempts_of(runtime, phone)
    assert first.state == "busy" and retry.state == "queued"
    assert retry.due_at == clock.now() + timedelta(minutes=15)
    await worker.run_until_idle()
    assert len(provider.placed) == 1  # not due yet
    clock.advance(timedelta(minutes=15))
    await worker.run_until_idle()
    assert [a.state for a in attempts_of(runtime, phone)] == ["busy", "completed"]


async def test_never_answering_citizen_is_exhausted_after_max_attempts(
    runtime: Runtime, clock: FakeClock, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone], rules={"contacts_per_24h": 10, "contacts_per_7d": 10})
    worker, provider = make_worker({phone: "never_answers"})
    for _ in range(4):
        await worker.run_until_idle()
        clock.advance(timedelta(hours=2))
    assert [a.state for a in attempts_of(runtime, phone)] == ["no_answer"] * 3
    assert contact_of(runtime, phone).state == "unreachable"
    assert len(provider.placed) == 3


async def test_opt_out_by_key_stops_every_campaign(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, provider = make_worker({phone: "opts_out_by_key"})
    await worker.run_until_idle()
    with db_session(runtime) as db:
        assert db.exec(select(OptOut).where(OptOut.phone == phone)).one().source == "call"
    assert contact_of(runtime, phone).state == "excluded"


async def test_hang_up_mid_question_keeps_answers_and_retries(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, _ = make_worker({phone: "hangs_up"})
    await worker.run_until_idle()
    first, retry = attempts_of(runtime, phone)
    assert first.state == "abandoned" and retry.state == "queued"
    with db_session(runtime) as db:
        kept = db.exec(select(Answer.question_id).where(Answer.attempt_id == first.id)).all()
    assert set(kept) == {"confirm", "attitude"}


async def test_answering_machine_ends_as_machine(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    (phone,) = phones(1)
    make_campaign([phone])
    worker, _ = make_worker({phone: "answering_machine"})
    await worker.run_until_idle()
    assert attempts_of(runtime, phone)[0].state == "machine"


async def test_an_untranscribed_complaint_is_summarised_by_what_was_unsatisfactory(
    runtime: Runtime, make_campaign: CampaignFactory, make_worker: WorkerFactory
) -> None:
    """No speech model: the escalation names what the citizen was unhappy with, in the
    script's language (never a question id like `attitude`)."""
    import yaml

    from tests.dialer.conftest import SURVEY_YAML

    script = yaml.safe_load(SURVEY_YAML)
    script["questions"] = [q for q in script["questions"] if q["id"] != "reason"]
    (phone,) = phones(1)
    make_campaign([phone], script_yaml=yaml.safe_dump(script, allow_unicode=True))
    worker, _ = make_worker({phone: "complains"})
    await worker.run_until_idle()
    with db_session(runtime) as db:
        escalation = db.exec(select(Escalation)).one()
    assert escalation.summary == "不满意：服务态度、到场时间、总体评价"


class ScriptedTranscriber:
    """Stands in for a `SpeechPool` with a model installed: hears the same words every time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.heard: list[str] = []

    async def transcribe_file(self, path: object, language: str) -> object:
        from huifang.speech.recognizer import Transcript

        self.heard.append(f"{path}:{language}")
        return Transcript(self.text, [], 0.8)


async def test_recorded_complaint_is_transcribed_tagged_and_kept(
    runtime: Runtime, make_campaign: CampaignFactory, tmp_path: object
) -> None:
    from huifang.dialer.survey import make_survey_call_factory
    from huifang.dialer.worker import DialerWorker
    from huifang.domain.models import Recording
    from huifang.telephony.sim.personas import PersonaBook
    from huifang.telephony.sim.provider import SimProvider

    (phone,) = phones(1)
    make_campaign([phone])
    speech = ScriptedTranscriber("民警 态度 很 差")
    factory = make_survey_call_factory(runtime, speech=speech)
    provider = SimProvider(factory, PersonaBook({"complains": 1}), clock=runtime.clock,
                           recordings_dir=runtime.settings.recordings_dir)  # fmt: skip
    worker = DialerWorker(runtime, provider)
    await worker.run_until_idle()
    await worker.close()
    with db_session(runtime) as db:
        recording = db.exec(select(Recording)).one()
        reason = db.exec(select(Answer).where(Answer.question_id == "reason")).one()
        escalation = db.exec(select(Escalation)).one()
    assert speech.heard == [f"{recording.path}:zh-CN"]
    assert recording.transcript == reason.transcript == "民警 态度 很 差"
    assert reason.recording_id == recording.id and "attitude" in reason.categories
    assert "attitude" in escalation.categories and escalation.summary == "民警 态度 很 差"
