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
    data_dir: Path, database_url: str, log: Path, *, extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
    """`huifang serve` on a free port, on `data_dir` and `database_url` (the caller's other
    HUIFANG_* variables left out, `extra_env` added), its output in the file `log` (never a
    pipe nobody reads); returns the process and its URL once /healthz answers."""
    import os
    import time

    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIFANG_")}
    env |= {"HUIFANG_DATA_DIR": str(data_dir), "HUIFANG_DATABASE_URL": database_url}
    env |= extra_env or {}
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
