"""The real `huifang` processes a test starts, and how it stops them."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

#: the command a user runs, from the virtual environment the tests run in
HUIFANG = Path(sys.executable).with_name("huifang")


def stop(
    process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 30
) -> None:
    """Ask `process` to end (`sig`), as an operator would; kill it if it outstays `timeout`."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    import socket
    from contextlib import closing

    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(
    env: dict[str, str], log: Path, *, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """`huifang serve` on a free port with `env`, its output in the file `log` (never a pipe
    nobody reads); returns the process and its URL once /healthz answers."""
    import time

    import httpx

    port = free_port()
    server = subprocess.Popen(
        [str(HUIFANG), "serve", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop(server)
            raise RuntimeError(f"huifang serve did not start: {log.read_text(errors='replace')}")
        time.sleep(0.2)
