"""The whole Asterisk path on one machine: the dialer worker places calls through the
provider to a scripted Asterisk manager (speaking the captures' bytes); an answered call
enters the FastAGI server, which runs the real built-in script with the database-backed
survey. The attempt ends the way the survey says, not the way the hang-up looks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from asterisk_replay import FakeAmi
from sqlalchemy import Engine
from sqlmodel import Session, select

from huifang.bootstrap import Runtime, build_runtime
from huifang.clock import FakeClock
from huifang.db import session_scope
from huifang.dialer.survey import make_survey_call_factory
from huifang.dialer.worker import DialerWorker
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    start_campaign,
)
from huifang.domain.models import Answer, CallAttempt, Contact
from huifang.domain.scripts import publish_script
from huifang.ivr.actions import Prompt
from huifang.ivr.script import builtin_scripts_dir
from huifang.settings import Settings
from huifang.telephony.asterisk.agi_server import AgiServer
from huifang.telephony.asterisk.ami_client import AmiClient
from huifang.telephony.asterisk.provider import AsteriskProvider
from tests.factories import make_incident, make_unit

PRESSES_1 = "+8613800000001"  # answers (its AGI side below presses 1 to every question)
BUSY = "+8613800000003"


async def citizen_pressing_1(port: int, uniqueid: str) -> list[str]:
    """Asterisk's side of the FastAGI session of a citizen who presses 1 at every prompt
    that accepts it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network_script: survey\nagi_uniqueid: {uniqueid}\n\n".encode())
    commands = []
    while line := await reader.readline():
        command = line.decode().rstrip("\n")
        commands.append(command)
        words = command.split(" ")
        if words[:2] == ["STREAM", "FILE"]:
            reply = "200 result=49 endpos=800" if "1" in words[-1] else "200 result=0 endpos=800"
        elif words[:2] == ["RECORD", "FILE"]:
            reply = "200 result=49 (dtmf) endpos=800"
        elif words[:3] == ["WAIT", "FOR", "DIGIT"]:
            reply = "200 result=49"
        else:
            reply = "200 result=1"
        writer.write(f"{reply}\n".encode())
        if command == "HANGUP":
            writer.write(b"HANGUP\n")
    writer.close()
    return commands


@dataclass
class Line:
    """Asterisk on loopback: the manager and the survey context's FastAGI connections."""

    ami: FakeAmi
    agi_port: int
    sessions: list[asyncio.Task[list[str]]]

    def answer_into_survey(self) -> None:
        """When a call to PRESSES_1 is answered, run its survey over FastAGI; its Hangup
        event comes once that session is over, as on a real Asterisk."""
        scripted = self.ami._answer

        async def answer(headers: dict[str, str], writer: asyncio.StreamWriter) -> list[str] | None:
            lines = await scripted(headers, writer)
            channel_id = headers.get("ChannelId", "")
            if lines is None or PRESSES_1[3:] not in headers.get("Channel", ""):
                return lines
            start = _final_hangup_start(lines, channel_id)
            held, lines = lines[start:], lines[:start]
            self.sessions.append(asyncio.create_task(self._survey_then(channel_id, held)))
            return lines

        self.ami._answer = answer  # type: ignore[method-assign]

    async def _survey_then(self, channel_id: str, held: list[str]) -> list[str]:
        commands = await citizen_pressing_1(self.agi_port, channel_id)
        self.ami.emit(held)
        return commands


def _final_hangup_start(lines: list[str], channel_id: str) -> int:
    """Index of the first line of the `Hangup` event of `channel_id` itself."""
    for i, line in enumerate(lines):
        if line == "Event: Hangup" and f"Uniqueid: {channel_id}" in lines[i : lines.index("", i)]:
            return i
    raise AssertionError(f"no Hangup of {channel_id} in the capture")


@pytest.fixture
def runtime(sqlite_engine: Engine, clock: FakeClock, tmp_path: Path) -> Runtime:
    settings = Settings(data_dir=tmp_path / "data", calls_per_second=1000)
    runtime = build_runtime(settings, clock=clock, migrate=False, engine=sqlite_engine)
    now = clock.now()
    with session_scope(runtime.engine) as db:
        unit = make_unit(db)
        for phone in (PRESSES_1, BUSY):
            make_incident(db, unit=unit, caller_phone=phone, handled_at=now - timedelta(hours=20),
                          occurred_at=now - timedelta(hours=21))  # fmt: skip
        source = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
        version = publish_script(db, source, now)
        assert version.id is not None
        plan = CampaignPlan("asterisk", version.id, IncidentSelection(now - timedelta(days=2), now),
                            channels="voice", rules={})  # fmt: skip
        campaign = create_campaign(db, plan, now=now)
        assert campaign.id is not None
        start_campaign(db, campaign.id, now=now)
    return runtime


@pytest.fixture
async def line(runtime: Runtime, tmp_path: Path) -> AsyncIterator[Line]:
    async def prompt_file(prompt: Prompt) -> str:
        return f"/var/lib/huifang/prompts/{prompt.key}"

    async def recognize(path: Path, language: str, phrases: object) -> tuple[str, float]:
        return "", 0.0

    survey_calls = make_survey_call_factory(runtime, classifier=lambda text, language: [])
    server = AgiServer(survey_calls, prompt_file, recognize, tmp_path)
    listener = await server.start("127.0.0.1", 0)
    ami = FakeAmi()
    await ami.start()
    yield Line(ami, listener.sockets[0].getsockname()[1], [])
    listener.close()
    await ami.stop()


def attempts(runtime: Runtime, phone: str) -> list[CallAttempt]:
    with Session(runtime.engine) as db:
        contact = db.exec(select(Contact).where(Contact.phone == phone)).one()
        query = select(CallAttempt).where(CallAttempt.contact_id == contact.id)
        return list(db.exec(query.order_by(CallAttempt.id)))  # type: ignore[arg-type]


async def test_a_surveyed_call_completes_and_a_busy_one_is_retried(
    runtime: Runtime, line: Line
) -> None:
    line.answer_into_survey()
    port = line.ami.server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = AmiClient("127.0.0.1", port, "huifang", "s3cret", ping_interval=3600)
    provider = AsteriskProvider(
        client, channel_template="Local/{number}@citizens", settle_seconds=0, clock=runtime.clock
    )
    worker = DialerWorker(runtime, provider)
    async with asyncio.timeout(30):
        await worker.run_until_idle()
        (commands,) = [await session for session in line.sessions]
    await worker.close()
    await provider.close()

    (surveyed,) = attempts(runtime, PRESSES_1)
    # the AMI Hangup came after the survey had ended the attempt: it changed nothing
    assert surveyed.state == "completed"
    with Session(runtime.engine) as db:
        answers = db.exec(select(Answer).where(Answer.attempt_id == surveyed.id)).all()
    assert {a.question_id: a.value for a in answers}["confirm"] == "1"
    assert commands[0] == "ANSWER" and commands[-1] == "HANGUP"
    busy, retry = attempts(runtime, BUSY)
    assert (busy.state, retry.state) == ("busy", "queued")
    assert line.ami.dials == {f"huifang-{surveyed.id}": 1, f"huifang-{busy.id}": 1}
