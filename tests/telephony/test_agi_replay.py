"""The FastAGI server against the real AGI captures, replayed by a scripted Asterisk."""

from __future__ import annotations

import asyncio
import filecmp
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from asterisk_replay import CAPTURES, AgiReplayPeer, Harness, ScriptedSurvey

from huifang.ivr.actions import (
    Action,
    Collect,
    Hangup,
    Play,
    Prompt,
    Record,
    SetVariable,
    Transfer,
)
from huifang.ivr.events import (
    CallStarted,
    DigitsReceived,
    Event,
    HungUp,
    NoInput,
    RecordingFinished,
    SpeechRecognized,
)
from huifang.telephony.asterisk.agi_server import listen_backlog

Q1 = Prompt("questions[0].prompt", "您对处警民警的服务满意吗？满意请按1，不满意请按2。", "zh-CN")
BYE = Prompt("closing", "感谢您的配合，再见。", "zh-CN")
ASK = [Play(Q1, barge_in_digits="12"), Collect("q1", "12", 1, (), "zh-CN", 5.0)]
COMPLAINT = [Record("complaint", max_seconds=10, silence_seconds=3)]


def goodbye(result: str) -> list[Action]:
    return [Play(BYE), SetVariable("HUIFANG_RESULT", result), Hangup()]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    yield Harness(tmp_path)


async def test_answered_with_digit_1(harness: Harness) -> None:
    harness.script = [ASK, goodbye("1")]
    peer = await harness.play(AgiReplayPeer("agi-answered-dtmf1.log"))
    (survey,) = harness.surveys
    assert survey.attempt_id == 1001
    assert survey.fed == [CallStarted(), DigitsReceived("1")]
    assert peer.commands == [
        "ANSWER",
        'STREAM FILE /tmp/astrun/prompt-q1 "12"',
        'STREAM FILE vm-goodbye ""',
        "SET VARIABLE HUIFANG_RESULT 1",
        "HANGUP",
    ]
    assert peer.unexpected == []


async def test_digit_2_then_a_recorded_complaint_then_hangup_in_goodbye(
    harness: Harness, tmp_path: Path
) -> None:
    harness.script = [ASK, COMPLAINT, goodbye("2")]
    recorded = CAPTURES / "recorded-complaint-ko-8k.wav"
    peer = await harness.play(
        AgiReplayPeer("agi-answered-dtmf2-speech.log", seed=7, recording=recorded)
    )
    (survey,) = harness.surveys
    # the script had reached its goodbye: a hang-up during it is not fed
    assert survey.fed == [
        CallStarted(),
        DigitsReceived("2"),
        RecordingFinished(f"{tmp_path}/huifang-1002-complaint.wav", 22344 / 8000),
    ]
    assert peer.commands[2:4] == [
        'STREAM FILE beep ""',
        f'RECORD FILE {tmp_path}/huifang-1002-complaint wav "#" 10000 0 s=3',
    ]
    assert peer.commands[-1] == 'STREAM FILE vm-goodbye ""'  # nothing sent after the hang-up
    # the survey is handed the file Asterisk wrote, on the shared volume
    finished = survey.fed[2]
    assert isinstance(finished, RecordingFinished)
    assert await asyncio.to_thread(filecmp.cmp, finished.path, recorded, False)


async def test_hangup_line_before_the_reply_ends_the_survey(harness: Harness) -> None:
    # the capture's SET VARIABLE reply is preceded by the asynchronous HANGUP line
    harness.script = [ASK, COMPLAINT, [SetVariable("HUIFANG_RESULT", "2"), *ASK]]
    peer = await harness.play(AgiReplayPeer("agi-answered-dtmf2-speech.log"))
    (survey,) = harness.surveys
    assert isinstance(survey.fed[-2], RecordingFinished)
    assert survey.fed[-1] == HungUp()
    assert peer.commands[-1] == "SET VARIABLE HUIFANG_RESULT 2"


async def test_200_concurrent_sessions_each_run_their_own_survey(harness: Harness) -> None:
    harness.script = []  # each survey below gets its own script
    server = await harness.server.start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def survey(attempt_id: int) -> ScriptedSurvey:
        made = ScriptedSurvey(attempt_id, [ASK, goodbye("1")])
        harness.surveys.append(made)
        return made

    harness.server.survey_calls = survey
    peers = [
        AgiReplayPeer("agi-answered-dtmf1.log", environment={"uniqueid": f"huifang-{i}"}, seed=i)
        for i in range(200)
    ]
    async with asyncio.timeout(30):
        await asyncio.gather(*(peer.run(port) for peer in peers))
    server.close()
    assert sorted(s.attempt_id for s in harness.surveys) == list(range(200))
    assert all(s.fed == [CallStarted(), DigitsReceived("1")] for s in harness.surveys)
    assert all(p.commands[-1] == "HANGUP" and not p.unexpected for p in peers)
    assert harness.server.active == 0


async def test_hangup_mid_question(harness: Harness) -> None:
    harness.script = [ASK, goodbye("none")]
    peer = await harness.play(AgiReplayPeer("agi-answer-then-hangup.log"))
    (survey,) = harness.surveys
    assert survey.fed == [CallStarted(), HungUp()]
    assert peer.commands == ["ANSWER", 'STREAM FILE /tmp/astrun/prompt-q1 "12"']


async def test_answers_before_a_hangup_are_kept(harness: Harness) -> None:
    """The dtmf2 capture's first answer is fed before the citizen hangs up."""
    harness.script = [ASK, [Play(BYE), *ASK[1:]]]
    await harness.play(AgiReplayPeer("agi-answered-dtmf2-speech.log"))
    (survey,) = harness.surveys
    assert survey.fed[:2] == [CallStarted(), DigitsReceived("2")]
    assert survey.fed[-1] == HungUp()


async def test_attempt_from_the_channel_variable_when_uniqueid_is_not_ours(
    harness: Harness,
) -> None:
    harness.script = [ASK, goodbye("1")]
    peer = await harness.play(
        AgiReplayPeer("agi-answered-dtmf1.log", environment={"uniqueid": "1795476555.42"})
    )
    assert harness.surveys[0].attempt_id == 1001
    assert peer.commands[1] == "GET VARIABLE HUIFANG_CALL_ID"


async def test_attempt_from_the_query_string(harness: Harness) -> None:
    harness.script = [ASK, goodbye("1")]
    await harness.play(
        AgiReplayPeer("agi-answered-dtmf1.log", environment={"network_script": "survey?attempt=77"})
    )
    assert harness.surveys[0].attempt_id == 77


async def test_a_machine_is_never_surveyed(harness: Harness) -> None:
    harness.script = [ASK, goodbye("1")]
    peer = await harness.play(
        AgiReplayPeer(
            "agi-answered-dtmf1.log", environment={"network_script": "survey?amd=MACHINE"}
        )
    )
    assert harness.surveys == []
    assert peer.commands == ["ANSWER", "SET VARIABLE HUIFANG_RESULT machine", "HANGUP"]


async def test_an_unknown_script_is_not_surveyed(harness: Harness) -> None:
    peer = await harness.play(
        AgiReplayPeer("agi-answered-dtmf1.log", environment={"network_script": "other"})
    )
    assert harness.surveys == [] and peer.commands == []


SPEECH_ASK = [Play(Q1), Collect("q1", "12", 1, ("满意", "不满意"), "zh-CN", 5.0)]


async def answer_with(
    harness: Harness, ask: list[Action], replies: dict[str, list[str]]
) -> tuple[list[Event], AgiReplayPeer]:
    """Ask one question; the capture's Asterisk gives `replies` to the commands it lacks."""
    harness.script = [ask, [Hangup()]]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE /tmp/astrun/prompt-q1 ""': ["200 result=0 endpos=25760"],
            **replies,
        },
    )
    await harness.play(peer)
    return harness.surveys[0].fed, peer


async def speech_answer(harness: Harness, reply: str) -> tuple[list[Event], AgiReplayPeer]:
    return await answer_with(harness, SPEECH_ASK, {"RECORD FILE": [reply]})


async def test_spoken_answer_is_recognised_with_the_phrases(
    harness: Harness, tmp_path: Path
) -> None:
    fed, peer = await speech_answer(harness, "200 result=0 (timeout) endpos=12000")
    assert fed[1] == SpeechRecognized("满意", 0.9)
    assert harness.recognized == [(tmp_path / "huifang-1001-q1.wav", "zh-CN", ("满意", "不满意"))]
    # the keys stop the recording; it may run past the question's wait once speech began
    assert peer.commands[2].startswith(f'RECORD FILE {tmp_path}/huifang-1001-q1 wav "12" 1')
    assert peer.commands[2].endswith(" 0 s=2")


async def test_a_key_during_a_spoken_answer_is_the_answer(harness: Harness) -> None:
    fed, _ = await speech_answer(harness, "200 result=50 (dtmf) endpos=800")
    assert fed[1] == DigitsReceived("2")
    assert harness.recognized == []


async def test_silence_is_no_input(harness: Harness) -> None:
    harness.speech = ("", 0.0)
    fed, _ = await speech_answer(harness, "200 result=0 (timeout) endpos=16000")
    assert fed[1] == NoInput()


async def test_transfer_hands_the_call_to_the_agent_context(harness: Harness) -> None:
    harness.script = [[Play(BYE), Transfer("callback-agents")]]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE vm-goodbye ""': ["200 result=0 endpos=7040"],
            "SET CONTEXT agents": ["200 result=0"],
            "SET EXTENSION callback-agents": ["200 result=0"],
            "SET PRIORITY 1": ["200 result=0"],
        },
    )
    await harness.play(peer)
    assert peer.commands[-3:] == [
        "SET CONTEXT agents",
        "SET EXTENSION callback-agents",
        "SET PRIORITY 1",
    ]
    assert "HANGUP" not in peer.commands


async def test_an_injected_prompt_path_hangs_up_without_writing_it(harness: Harness) -> None:
    async def crafted(prompt: Prompt) -> str:
        return 'x" \nEXEC System "rm -rf /'

    harness.server.prompt_file = crafted
    harness.script = [ASK]
    peer = await harness.play(AgiReplayPeer("agi-answered-dtmf1.log"))
    assert peer.commands == ["ANSWER", "HANGUP"]
    assert harness.surveys[0].fed[-1] == HungUp()


ONE_KEY = [Play(Q1), Collect("q1", "12", 1, (), "zh-CN", 5.0)]
FOUR_KEYS = [Play(Q1), Collect("code", "0123456789", 4, (), "zh-CN", 5.0)]


@pytest.mark.parametrize(
    ("ask", "command", "reply", "event"),
    [
        (ONE_KEY, "WAIT FOR DIGIT 5000", "200 result=49", DigitsReceived("1")),
        (ONE_KEY, "WAIT FOR DIGIT 5000", "200 result=0", NoInput()),
        (ONE_KEY, "WAIT FOR DIGIT 5000", "200 result=-1", HungUp()),
        (FOUR_KEYS, "GET DATA silence/1 5000 4", "200 result=1234", DigitsReceived("1234")),
        (FOUR_KEYS, "GET DATA silence/1 5000 4", "200 result= (timeout)", NoInput()),
        (FOUR_KEYS, "GET DATA silence/1 5000 4", "200 result=12 (timeout)", DigitsReceived("12")),
        (FOUR_KEYS, "GET DATA silence/1 5000 4", "200 result=9*", DigitsReceived("9*")),
    ],
)
async def test_keys_are_collected_after_the_prompt(
    harness: Harness, ask: list[Action], command: str, reply: str, event: Event
) -> None:
    fed, peer = await answer_with(harness, ask, {command: [reply]})
    assert fed[1] == event
    assert peer.commands[2] == command


async def test_a_hangup_while_recording_keeps_the_recording(
    harness: Harness, tmp_path: Path
) -> None:
    harness.script = [COMPLAINT, ASK]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE beep ""': ["200 result=0 endpos=3520"],
            "RECORD FILE": ["HANGUP", "200 result=-1 (hangup) endpos=16000"],
        },
    )
    await harness.play(peer)
    fed = harness.surveys[0].fed
    assert fed[1:] == [RecordingFinished(f"{tmp_path}/huifang-1001-complaint.wav", 2.0), HungUp()]
    assert peer.commands[-1].startswith("RECORD FILE")


async def test_a_question_asked_again_records_to_a_new_file(
    harness: Harness, tmp_path: Path
) -> None:
    harness.script = [SPEECH_ASK, SPEECH_ASK, [Hangup()]]
    harness.speech = ("", 0.0)
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE /tmp/astrun/prompt-q1 ""': ["200 result=0 endpos=25760"],
            f"RECORD FILE {tmp_path}/huifang-1001-q1 ": ["200 result=0 (timeout) endpos=16000"],
            f"RECORD FILE {tmp_path}/huifang-1001-q1-2 ": ["200 result=0 (timeout) endpos=16000"],
        },
    )
    await harness.play(peer)
    assert [p.name for p, _, _ in harness.recognized] == [
        "huifang-1001-q1.wav",
        "huifang-1001-q1-2.wav",
    ]


async def test_the_builtin_110_script_runs_over_the_dtmf1_capture(harness: Harness) -> None:
    from huifang.ivr.interpreter import Session
    from huifang.ivr.script import builtin_script

    script = builtin_script("survey-110.zh-CN")
    session = Session(script, {name: "测试" for name in script.variables_used})
    fed: list[Event] = []

    class LiveSurvey:
        """The real interpreter behind the SurveyCall boundary (no storage)."""

        finished = property(lambda self: session.finished)

        async def start(self) -> Sequence[Action]:
            return session.start()

        async def feed(self, event: Event) -> Sequence[Action]:
            fed.append(event)
            return session.feed(event)

    async def live(attempt_id: int) -> LiveSurvey:
        return LiveSurvey()

    harness.server.survey_calls = live
    peer = await harness.play(AgiReplayPeer("agi-answered-dtmf1.log"))
    # the citizen pressed 1 during the first prompt (barge-in), then the capture's channel
    # died while the next question was being answered: what was answered is kept
    assert peer.commands[1] == 'STREAM FILE /tmp/astrun/prompt-q1 "190"'
    assert fed == [DigitsReceived("1"), HungUp()]
    result = session.result()
    assert [(a.question_id, a.value) for a in result.answers] == [("confirm", "1")]
    assert result.hung_up and not result.completed


# --- what real calls on a real Asterisk showed (issue 15)


async def test_a_prompt_asterisk_cannot_open_is_reported_and_ends_the_call(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """`200 result=-1 endpos=0` with the channel still up: Asterisk could not open the
    file (a relative path, a volume it does not see). Said loudly, not taken for a hang-up."""
    harness.script = [ASK]
    _, peer = await answer_with(
        harness,
        ASK,
        {
            'STREAM FILE /tmp/astrun/prompt-q1 "12"': ["200 result=-1 endpos=0"],
            "WAIT FOR DIGIT 1": ["200 result=0"],
        },  # fmt: skip
    )
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("cannot play /tmp/astrun/prompt-q1" in message for message in errors), errors
    assert harness.surveys[0].fed == [CallStarted(), HungUp()]
    assert peer.commands[-2:] == ["WAIT FOR DIGIT 1", "HANGUP"]


async def test_a_hang_up_as_a_prompt_starts_is_a_hang_up(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _, peer = await answer_with(
        harness,
        ASK,
        {
            'STREAM FILE /tmp/astrun/prompt-q1 "12"': ["200 result=-1 endpos=0"],
            "WAIT FOR DIGIT 1": ["511 Command Not Permitted on a dead channel"],
        },  # fmt: skip
    )
    assert harness.surveys[0].fed == [CallStarted(), HungUp()]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_without_a_speech_model_a_spoken_question_waits_for_keys_its_whole_timeout(
    harness: Harness,
) -> None:
    harness.languages = set()
    fed, peer = await answer_with(harness, SPEECH_ASK, {"WAIT FOR DIGIT 5000": ["200 result=49"]})
    assert fed[1] == DigitsReceived("1")
    assert peer.commands[2] == "WAIT FOR DIGIT 5000"


async def test_a_pause_before_speaking_does_not_end_a_spoken_answer(
    harness: Harness, tmp_path: Path
) -> None:
    """Asterisk ends a recording after two seconds of silence, also before any word: the
    recording goes on (appended at its end) until the citizen spoke or the question's
    time is up."""
    harness.heard = [False, True]
    harness.script = [SPEECH_ASK, [Hangup()]]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={'STREAM FILE /tmp/astrun/prompt-q1 ""': ["200 result=0 endpos=25760"]},
        reply_sequences={
            "RECORD FILE": [
                ["200 result=0 (timeout) endpos=8000"],
                ["200 result=0 (timeout) endpos=30000"],
            ]
        },  # fmt: skip
    )
    await harness.play(peer)
    fed = harness.surveys[0].fed
    assert fed[1] == SpeechRecognized("满意", 0.9)
    records = [c for c in peer.commands if c.startswith("RECORD FILE")]
    assert len(records) == 2
    assert records[0].endswith(" 0 s=2") and records[1].endswith(" 8000 s=2")
    assert harness.listened == [("huifang-1001-q1.wav", 0), ("huifang-1001-q1.wav", 8000)]
    assert len(harness.recognized) == 1


async def test_silence_until_asterisk_records_nothing_more_is_no_input(harness: Harness) -> None:
    harness.heard = [False, False]
    fed, peer = await speech_answer(harness, "200 result=0 (timeout) endpos=8000")
    assert fed[1] == NoInput()
    assert harness.recognized == []
    assert len([c for c in peer.commands if c.startswith("RECORD FILE")]) == 2


async def test_a_health_probe_of_the_port_is_logged_at_debug_only(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    noticed = asyncio.Event()

    class Notice(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            noticed.set()

    logger = logging.getLogger("huifang.telephony.asterisk.agi_server")
    caplog.set_level("DEBUG", logger=logger.name)
    logger.addHandler(notice := Notice())
    server = await harness.server.start("127.0.0.1", 0)
    _, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    writer.close()
    async with asyncio.timeout(5):
        await noticed.wait()
    logger.removeHandler(notice)
    server.close()
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert "health probe" in caplog.records[0].getMessage()
    assert harness.surveys == []


async def test_recordings_are_named_with_the_installation(tmp_path: Path) -> None:
    """Two databases writing to one recording directory never collide: each installation's
    files carry its own key."""
    harness = Harness(tmp_path, recording_prefix="huifang-3fa9c2d1-")
    harness.script = [COMPLAINT, [Hangup()]]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE beep ""': ["200 result=0 endpos=3520"],
            "RECORD FILE": ["200 result=0 (timeout) endpos=16000"],
        },  # fmt: skip
    )
    await harness.play(peer)
    assert peer.commands[2].startswith(
        f"RECORD FILE {tmp_path}/huifang-3fa9c2d1-1001-complaint wav"
    )


async def test_an_empty_recording_is_removed(harness: Harness, tmp_path: Path) -> None:
    """Asterisk leaves a 44-byte WAV (a header, no sound) when the citizen hangs up at the
    beep: it is not kept."""
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"RIFF" + bytes(40))
    harness.script = [COMPLAINT, [Hangup()]]
    peer = AgiReplayPeer(
        "agi-answered-dtmf1.log",
        extra_replies={
            'STREAM FILE beep ""': ["200 result=0 endpos=3520"],
            "RECORD FILE": ["HANGUP", "200 result=-1 (hangup) endpos=0"],
        },  # fmt: skip
        recording=empty,
    )
    await harness.play(peer)
    assert harness.surveys[0].fed[-1] == HungUp()
    assert not (tmp_path / "huifang-1001-complaint.wav").exists()


@pytest.mark.parametrize(("concurrency", "backlog"), [(1, 512), (256, 512), (500, 1000)])
def test_the_listen_backlog_holds_twice_the_calls_expected_at_once(
    concurrency: int, backlog: int
) -> None:
    assert listen_backlog(concurrency) == backlog


async def test_the_server_listens_with_the_backlog_sized_for_its_concurrency(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: dict[str, object] = {}
    real_start_server = asyncio.start_server

    async def start_server(*args: object, **kwargs: object) -> asyncio.Server:
        asked.update(kwargs)
        return await real_start_server(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "start_server", start_server)
    listener = await Harness(tmp_path, concurrency=900).server.start("127.0.0.1", 0)
    listener.close()
    assert asked["backlog"] == listen_backlog(900) == 1800


async def test_an_asterisk_silent_past_the_reply_timeout_is_hung_up_on(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.server.reply_timeout = 0.2
    listener = await harness.server.start("127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network_script: survey\nagi_uniqueid: huifang-1001\n\n")
    async with asyncio.timeout(10):
        assert await reader.readline() == b"ANSWER\n"
        # never answered: the server gives up on the call and closes the connection
        assert await reader.read() == b""
    assert harness.server.active == 0 and harness.surveys == []
    writer.close()
    listener.close()
