"""A real Asterisk for the test suite and `bench/agi.py`.

Built once from the upstream source tarball in `../shared/asterisk/src/` by
`scripts/build-asterisk` (cached outside the clone, keyed by the tarball's hash), then run
unprivileged-style under a private directory: Huifang's shipped configuration from
`config/asterisk/` (extensions.conf, manager.conf, amd.conf, queues.conf and the lab of
citizens, citizens.conf) with only the ports, the AMI secret and the FastAGI address
changed, no SIP stack, and the modules the dialplan needs.

`huifang worker` and `huifang agi serve` are run as a user runs them (`HuifangProcess`):
with the README's defaults, in a working directory of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import stop as stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "config" / "asterisk"
SOURCE_DIR = REPO_ROOT.parent / "shared" / "asterisk" / "src"
CAPTURES = REPO_ROOT.parent / "shared" / "asterisk" / "captures"
HOW_TO_ENABLE = (
    "put an Asterisk source tarball (asterisk-22.x.tar.xz) in ../shared/asterisk/src/ beside "
    "the clone; the suite then builds it once with scripts/build-asterisk (about 10 minutes)"
)
AMI_USER, AMI_SECRET = "huifang", "lab-ami-secret-7f3c9a"
#: the lab's own AMI account, with every right, to watch what Huifang makes Asterisk do
OBSERVER, OBSERVER_SECRET = "lab-observer", "lab-observer-secret-2b8e"
MODULES = (
    "pbx_config res_agi res_speech app_amd app_queue app_mixmonitor app_playback app_senddtmf "
    "app_userevent app_waitforsilence app_stack app_verbose app_dial func_module func_strings "
    "func_db format_wav format_pcm codec_ulaw codec_alaw res_musiconhold"
).split()
#: the lab's sounds: text spoken in Mandarin by espeak-ng
SPOKEN = {
    "hello": "喂？",
    "machine": "您好，您拨打的用户暂时无法接通，请在提示音后留言，谢谢。",
}


class AsteriskUnavailable(Exception):
    """No Asterisk can be had here; the message says how to get one."""


def asterisk_prefix() -> Path:
    """The install prefix of a built Asterisk, building it on first use."""
    tarballs = sorted(SOURCE_DIR.glob("asterisk-*.tar.xz"))
    if not tarballs:
        raise AsteriskUnavailable(f"no Asterisk source in {SOURCE_DIR}: {HOW_TO_ENABLE}")
    built = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-asterisk"), str(tarballs[-1])],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise AsteriskUnavailable(f"building Asterisk failed: {built.stderr.strip()}")
    return Path(built.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- sounds


def _write_silence(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * int(8000 * seconds))


def make_sounds(sounds: Path) -> None:
    """The lab's sounds (huifang-lab/), and the two core sounds Huifang uses (`beep`,
    `silence/1`, normally from Asterisk's core sounds package)."""
    lab = sounds / "huifang-lab"
    (sounds / "silence").mkdir(parents=True, exist_ok=True)
    lab.mkdir(parents=True, exist_ok=True)
    for name, text in SPOKEN.items():
        raw = lab / f"{name}-raw.wav"
        subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(raw), text], check=True)
        subprocess.run(
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(lab / f"{name}.wav")],
            check=True,
        )
        raw.unlink()
    shutil.copy(CAPTURES / "recorded-complaint-ko-8k.wav", lab / "complaint.wav")
    for seconds in (1, 3, 6):
        _write_silence(lab / f"silence-{seconds}.wav", seconds)
    _write_silence(sounds / "silence" / "1.wav", 1)
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(sounds / "beep.wav"),
         "synth", "0.25", "sine", "1000", "vol", "0.5"],
        check=True,
    )  # fmt: skip


# --- Asterisk


def _replace_line(text: str, pattern: str, line: str) -> str:
    changed, count = re.subn(pattern, line, text, count=1, flags=re.MULTILINE)
    assert count == 1, f"the shipped configuration has no line matching {pattern!r}"
    return changed


@dataclass
class AsteriskLab:
    """One Asterisk process under `root`, speaking AMI on `ami_port` and sending answered
    calls to FastAGI on `agi_port`."""

    prefix: Path
    root: Path
    sounds: Path
    ami_port: int = field(default_factory=free_port)
    agi_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def recordings(self) -> Path:
        """Where Huifang asks Asterisk to record (HUIFANG_ASTERISK_RECORDINGS_DIR)."""
        return self.root / "recordings"

    @property
    def log(self) -> Path:
        return self.root / "log" / "full"

    def configure(self) -> None:
        for name in ("var", "run", "spool", "log", "data"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.etc.mkdir(parents=True, exist_ok=True)
        self.recordings.mkdir(exist_ok=True)
        data = self.root / "data"
        for name in ("documentation", "sounds"):
            (data / name).unlink(missing_ok=True)
        (data / "documentation").symlink_to(self.prefix / "var/lib/asterisk/documentation")
        (data / "sounds").symlink_to(self.sounds)
        (self.etc / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {self.etc}\n"
            f"astmoddir => {self.prefix}/lib/asterisk/modules\n"
            f"astvarlibdir => {self.root}/var\n"
            f"astdbdir => {self.root}/var\n"
            f"astkeydir => {self.root}/var\n"
            f"astdatadir => {data}\n"
            f"astagidir => {self.root}/var/agi-bin\n"
            f"astspooldir => {self.root}/spool\n"
            f"astrundir => {self.root}/run\n"
            f"astlogdir => {self.root}/log\n"
            f"astsbindir => {self.prefix}/sbin\n"
            f"astcachedir => {self.root}/var/cache\n"
            "[options]\nnofork = yes\n"
        )
        (self.etc / "modules.conf").write_text(
            "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES)
        )
        (self.etc / "logger.conf").write_text(
            "[general]\n[logfiles]\nfull => notice,warning,error,verbose(3),dtmf\n"
        )
        for name in ("amd.conf", "queues.conf", "citizens.conf"):
            shutil.copy(CONFIG / name, self.etc / name)
        manager = (CONFIG / "manager.conf").read_text(encoding="utf-8")
        manager = _replace_line(manager, r"^port *=.*$", f"port = {self.ami_port}")
        manager = _replace_line(manager, r"^secret *=.*$", f"secret = {AMI_SECRET}")
        manager += (
            f"\n[{OBSERVER}]\nsecret = {OBSERVER_SECRET}\n"
            "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n"
        )
        (self.etc / "manager.conf").write_text(manager, encoding="utf-8")
        dialplan = (CONFIG / "extensions.conf").read_text(encoding="utf-8")
        dialplan = _replace_line(
            dialplan, r"^HUIFANG_AGI *=.*$", f"HUIFANG_AGI = agi://127.0.0.1:{self.agi_port}"
        )
        (self.etc / "extensions.conf").write_text(
            dialplan + "\n#include citizens.conf\n", encoding="utf-8"
        )

    def start(self) -> None:
        self.configure()
        log = (self.root / "log" / "console.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.prefix / "sbin" / "asterisk"), "-C", str(self.etc / "asterisk.conf"),
             "-f", "-n", "-g"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._booted, 60, f"Asterisk to boot (see {self.root / 'log'})")

    def _booted(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"Asterisk exited with {self.process.returncode}")
        done = self.cli_run("core waitfullybooted")
        return done.returncode == 0 and port_open(self.ami_port)

    def cli_run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.prefix / "sbin" / "asterisk"), "-C", str(self.etc / "asterisk.conf"),
             "-rx", command],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    def cli(self, command: str) -> str:
        done = self.cli_run(command)
        if done.returncode != 0:
            raise AssertionError(f"asterisk -rx {command!r} failed: {done.stderr or done.stdout}")
        return done.stdout

    def channels(self) -> list[str]:
        """The channels Asterisk carries now (`core show channels concise`)."""
        return [line for line in self.cli("core show channels concise").splitlines() if line]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.cli_run("core stop now")
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 80) -> str:
        if not self.log.is_file():
            return "(no Asterisk log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# --- Huifang's processes


def huifang_environment(lab: AsteriskLab, **overrides: str) -> dict[str, str]:
    """The settings a user sets to use this Asterisk; everything else is the default (the
    data directory is ./var of the working directory, as in the README)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")}
    env.update(
        HUIFANG_TELEPHONY_PROVIDER="asterisk",
        HUIFANG_AMI_PORT=str(lab.ami_port),
        HUIFANG_AMI_SECRET=AMI_SECRET,
        HUIFANG_ASTERISK_CHANNEL_TEMPLATE="Local/{number}@citizens",
        HUIFANG_ASTERISK_RECORDINGS_DIR=str(lab.recordings),
        HUIFANG_AGI_PORT=str(lab.agi_port),
    )
    env.update(overrides)
    return env


@dataclass
class HuifangProcess:
    """`huifang <args>` running in `workdir`, its output in `workdir/<name>.log`."""

    name: str
    args: list[str]
    workdir: Path
    env: Mapping[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> HuifangProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "huifang", *self.args],
            cwd=self.workdir, env=dict(self.env), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process is not None:
            stop_process(self.process, sig=sig, timeout=timeout)


class TcpProxy:
    """A TCP relay on `port` to `target_port`, in a thread of its own: the test's way to
    take AMI away from a running worker (`cut` drops the connections, `close` stops
    listening) and to give it back (`open`)."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        import asyncio
        import threading

        self.target_port = target_port
        self.port = port or free_port()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, work: Callable[[], object]) -> object:
        import asyncio

        async def run() -> object:
            result = work()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def open(self) -> None:
        import asyncio

        async def listen() -> None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

        self._call(listen)

    def close(self) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None

        self._call(stop)
        self.cut()

    def cut(self) -> None:
        """Drop every relayed connection at once (both ends see it closed)."""

        def drop() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self._call(drop)

    def shutdown(self) -> None:
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _relay(self, reader: object, writer: object) -> None:
        import asyncio

        assert isinstance(reader, asyncio.StreamReader) and isinstance(writer, asyncio.StreamWriter)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
