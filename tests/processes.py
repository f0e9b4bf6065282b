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
