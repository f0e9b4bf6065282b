"""Item 2 against a real `huifang serve`: 300 MB bodies are refused without the server's
memory growing.

Each attacker streams a 300 MB chunked body as fast as the socket takes it; the server
answers 413 after the small limit and closes the connection, so the rest is never read.
The server's peak resident memory (VmHWM) is compared before and after four at once.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.security.server import Server, running_server

MEGABYTE = 1 << 20
ATTACK_MB = 300
#: what four 300 MB bodies may add to the server's peak memory
ALLOWED_GROWTH_KB = 8 * 1024


def _attack(
    server: Server, path: str, *, declare_length: bool, content_type: str = "application/json"
) -> tuple[str, int]:
    """Stream a 300 MB body to `path`; the status line answered and the MB sent."""
    framing = (
        f"Content-Length: {ATTACK_MB * MEGABYTE}"
        if declare_length
        else "Transfer-Encoding: chunked"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\n\r\n"
    )
    chunk = b"x" * MEGABYTE
    frame = chunk if declare_length else b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for _ in range(ATTACK_MB):
                sock.sendall(frame)
                sent += 1
        except OSError:
            pass  # the server closed the connection: it will not read the rest
        try:
            status = sock.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            status = f"no answer: {exc}"
    return status, sent


def test_300_mb_bodies_are_refused_without_the_server_growing(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        # warm up: every code path of a refusal has run once before the baseline
        for declare in (False, True):
            assert _attack(server, "/api/v1/auth/login", declare_length=declare)[0].endswith(
                "413 Request Entity Too Large"
            )
        baseline = server.memory_kb("VmHWM")
        targets = [
            ("/api/v1/auth/login", "application/json"),
            ("/webhooks/sms-http/inbound", "application/json"),
            ("/api/v1/incidents/import", "multipart/form-data; boundary=x"),
            ("/login", "application/x-www-form-urlencoded"),
        ]
        with ThreadPoolExecutor(len(targets)) as pool:
            results = list(
                pool.map(
                    lambda t: _attack(server, t[0], declare_length=False, content_type=t[1]),
                    targets,
                )
            )
        growth = server.memory_kb("VmHWM") - baseline
        assert server.process.poll() is None
    statuses = [status for status, _sent in results]
    assert statuses[0].endswith("413 Request Entity Too Large"), statuses
    assert statuses[1].endswith("413 Request Entity Too Large"), statuses
    assert statuses[2].endswith("401 Unauthorized"), statuses  # before a byte of the file
    assert statuses[3].endswith("413 Request Entity Too Large"), statuses
    assert all(sent < ATTACK_MB for _status, sent in results), results
    assert growth <= ALLOWED_GROWTH_KB, f"peak memory grew by {growth} kB"
