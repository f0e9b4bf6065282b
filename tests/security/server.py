"""A real `huifang serve` process for the security tests, run as the README tells a user
to: the installed `huifang` command, settings from HUIFANG_* variables, its defaults
otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import HUIFANG, stop


@dataclass
class Server:
    url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def memory_kb(self, field: str) -> int:
        """A field of the server process's /proc status, e.g. VmRSS or VmHWM (its peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise KeyError(field)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    data_dir: Path, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[Server]:
    port = _free_port()
    environment = {
        **os.environ,
        "HUIFANG_DATA_DIR": str(data_dir),
        "HUIFANG_SESSION_SECRET": "security-tests-secret-0123456789",
        **(env or {}),
    }
    process = subprocess.Popen(
        [str(HUIFANG), "serve", "--port", str(port), "--workers", str(workers)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, process)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        stop(process, timeout=20)


def _wait_until_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            _, errors = server.process.communicate()
            raise AssertionError(f"huifang serve exited: {errors.decode()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("huifang serve did not become healthy")
