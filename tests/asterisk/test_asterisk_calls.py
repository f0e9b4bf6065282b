"""Real calls through a real Asterisk, as a user sets Huifang up: `huifang agi serve` and
`huifang worker` with the README's defaults (data in ./var, SQLite), the built-in 110
survey, a speech model installed, and the lab's citizens (config/asterisk/citizens.conf)
all called at once by one campaign. Each test reads one citizen's outcome."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from asterisk_lab import AsteriskLab
from conftest import Installation, citizen, new_installation, register_model_for, report

pytestmark = pytest.mark.asterisk

SATISFIED, COMPLAINS, BUSY, NO_ANSWER, CONGESTION = (citizen(n) for n in (1, 2, 3, 4, 5))
HANGS_UP_AT_ONCE, MACHINE, SILENT, NOT_THE_CALLER, NEVER_CALL = (
    citizen(n) for n in (6, 7, 8, 9, 10)
)
HANGS_UP_MIDWAY, THINKS = citizen(11), citizen(12)
EVERYONE = [SATISFIED, COMPLAINS, BUSY, NO_ANSWER, CONGESTION, HANGS_UP_AT_ONCE, MACHINE,
            SILENT, NOT_THE_CALLER, NEVER_CALL, HANGS_UP_MIDWAY, THINKS]  # fmt: skip


@pytest.fixture(scope="module")
def day(
    asterisk: AsteriskLab, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Installation]:
    """One campaign day: every citizen called once, all at the same time."""
    made = new_installation(asterisk, tmp_path_factory.mktemp("day") / "huifang")
    register_model_for(made.settings.effective_models_dir, "zh-CN")
    made.campaign(EVERYONE)
    failures = request.session.testsfailed
    made.agi_serve()
    made.worker()
    try:
        made.wait_until_ended(EVERYONE, timeout=240)
    except AssertionError:
        report(made)
        raise
    yield made
    made.stop()
    if request.session.testsfailed > failures:
        report(made)
    made.engine.dispose()


def answers(day: Installation, phone: str) -> dict[str, str]:
    attempt = day.first_attempt(phone)
    rows = day.rows("SELECT question_id, outcome FROM answers WHERE attempt_id = :a", a=attempt.id)
    return {row.question_id: row.outcome for row in rows}


def fed(day: Installation, phone: str) -> list[str]:
    """The kinds of IVR events the survey of `phone`'s first call was fed."""
    import json

    log = day.first_attempt(phone).ivr_log
    return [entry["type"] for entry in (json.loads(log) if isinstance(log, str) else log)]


def test_a_satisfied_citizen_is_surveyed_to_the_end_by_keys(day: Installation) -> None:
    attempt = day.first_attempt(SATISFIED)
    assert (attempt.state, attempt.outcome) == ("completed", "completed")
    assert answers(day, SATISFIED) == {
        "confirm": None, "attitude": "satisfied", "arrival_time": "satisfied",
        "handling": "satisfied", "overall": "satisfied",
    }  # fmt: skip


def test_prompts_reach_asterisk_by_absolute_paths(day: Installation) -> None:
    played = re.findall(r"Playing '([^']+)'", day.asterisk_log())
    prompts = [path for path in played if "tts-" in path]
    assert prompts and all(path.startswith("/") for path in prompts)
    assert "does not exist" not in day.asterisk_log()


def test_keys_pressed_while_a_question_plays_answer_it(day: Installation) -> None:
    """Barge-in: the lab's citizens press 0.3 s into each prompt, never after it."""
    assert "no_input" not in fed(day, SATISFIED)
    assert len(re.findall(r"DTMF end '1' received on Local/13800000001", day.asterisk_log())) >= 5


def test_a_spoken_complaint_is_recorded_transcribed_and_escalated(day: Installation) -> None:
    attempt = day.first_attempt(COMPLAINS)
    assert attempt.outcome == "completed"
    assert answers(day, COMPLAINS)["attitude"] == "unsatisfied"
    (recording,) = day.rows("SELECT * FROM recordings WHERE attempt_id = :a", a=attempt.id)
    assert Path(recording.path).is_file() and recording.duration_seconds > 1
    assert re.search(r"[\uac00-\ud7a3]", recording.transcript)  # the Korean model heard Korean
    (escalation,) = day.rows("SELECT * FROM escalations WHERE attempt_id = :a", a=attempt.id)
    assert escalation.summary == recording.transcript


@pytest.mark.parametrize(
    ("phone", "outcome", "cause"),
    [
        (BUSY, "busy", "busy"),
        (NO_ANSWER, "no_answer", "no_answer"),
        (CONGESTION, "failed", "congestion"),
    ],
)
def test_unanswered_calls_end_with_what_asterisk_said(
    day: Installation, phone: str, outcome: str, cause: str
) -> None:
    attempt = day.first_attempt(phone)
    assert (attempt.outcome, attempt.cause) == (outcome, cause)
    retry = day.attempts(phone)[1]
    assert retry.state == "queued" and retry.dialed_at is None


def test_a_citizen_who_hangs_up_at_once_is_an_abandoned_call(day: Installation) -> None:
    assert day.first_attempt(HANGS_UP_AT_ONCE).outcome == "abandoned"


def test_an_answering_machine_is_detected_and_not_surveyed(day: Installation) -> None:
    attempt = day.first_attempt(MACHINE)
    assert attempt.outcome == "machine"
    assert "AMDStatus: MACHINE" in _amd_line(day, attempt.id)
    assert fed(day, MACHINE) == []


def test_amd_hears_a_short_mandarin_hello_as_a_person(day: Installation) -> None:
    assert "AMDStatus: HUMAN" in _amd_line(day, day.first_attempt(SATISFIED).id)


def test_a_silent_person_is_surveyed_then_ends_as_a_machine(day: Installation) -> None:
    attempt = day.first_attempt(SILENT)
    assert "AMDStatus: NOTSURE" in _amd_line(day, attempt.id)
    assert attempt.outcome == "machine"
    assert fed(day, SILENT)[0] == "started"


def test_not_the_caller_is_excluded(day: Installation) -> None:
    (contact,) = day.rows("SELECT * FROM contacts WHERE phone = :p", p=NOT_THE_CALLER)
    assert contact.state == "excluded"
    assert day.first_attempt(NOT_THE_CALLER).outcome == "completed"


def test_never_call_me_opts_the_phone_out(day: Installation) -> None:
    assert day.rows("SELECT * FROM opt_outs WHERE phone = :p", p=NEVER_CALL)
    (contact,) = day.rows("SELECT * FROM contacts WHERE phone = :p", p=NEVER_CALL)
    assert contact.state == "excluded"


def test_a_hang_up_mid_survey_keeps_what_was_answered(day: Installation) -> None:
    assert day.first_attempt(HANGS_UP_MIDWAY).outcome == "abandoned"
    assert answers(day, HANGS_UP_MIDWAY) == {"confirm": None, "attitude": "basically_satisfied"}


def test_a_citizen_who_thinks_before_answering_is_not_cut_off(day: Installation) -> None:
    """Three seconds of silence after the question, then a key: within the script's six."""
    assert day.first_attempt(THINKS).outcome == "completed"
    assert "no_input" not in fed(day, THINKS)
    assert answers(day, THINKS)["attitude"] == "satisfied"


def test_every_attempt_was_dialled_once_and_no_channel_is_left(day: Installation) -> None:
    log = day.asterisk_log()
    for phone in EVERYONE:
        assert len(re.findall(rf"Called {phone[3:]}@citizens", log)) == 1, phone
    assert day.lab.channels() == []


def _amd_line(day: Installation, attempt_id: int) -> str:
    """The AMD verdict Asterisk announced for the attempt's channel."""
    log = day.asterisk_log()
    channel = re.search(rf"NoOp\(\"(Local/[^\"]+;1)\", \"Huifang survey call {attempt_id} ", log)
    assert channel, f"attempt {attempt_id} never reached the survey context"
    found = re.search(rf"UserEvent\(\"{re.escape(channel[1])}\", \"HuifangAMD,([^\"]*)\"", log)
    assert found, f"no AMD verdict for attempt {attempt_id}"
    return found[1]


def test_without_a_speech_model_a_question_waits_for_keys_its_whole_timeout(
    installation: Installation,
) -> None:
    """No model for the script's language: spoken answers cannot be heard, so a citizen who
    thinks three seconds and presses a key is waited for (six seconds), not cut off."""
    installation.campaign([THINKS])
    agi = installation.agi_serve()
    installation.worker()
    installation.wait_until_ended([THINKS])
    assert installation.first_attempt(THINKS).outcome == "completed"
    assert "no_input" not in fed(installation, THINKS)
    assert "no speech model for zh-CN" in agi.output()
