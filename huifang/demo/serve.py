"""The API and console on the demo's database, with click-to-call on the simulated line.

Rules kept here: the port is taken before the campaign runs (`reserve_port`), so a busy port
is reported at once, with the fix, and is still ours when the console starts; the served
runtime carries the simulated line as its telephony service, so an agent's click-to-call
rings their phone and the citizen's on it (both legs connect at once).
"""

from __future__ import annotations

import errno
import socket
from contextlib import closing

from fastapi import FastAPI

from huifang.bootstrap import Runtime, build_runtime
from huifang.dialer.survey import make_survey_call_factory
from huifang.followup.callback import TELEPHONY_SERVICE
from huifang.settings import Settings
from huifang.telephony.sim.personas import PersonaBook
from huifang.telephony.sim.provider import SimProvider


class PortBusy(Exception):
    """The port cannot be listened on; the message says why and what to do."""


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), ready for the server; PortBusy when it cannot be."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortBusy(port_refusal(host, port, exc)) from None
    return sock


def port_refusal(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port} on {host} is in use (another `huifang serve` or demo?)"
    else:
        why = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    free = _free_port_after(host, port)
    return (
        f"{why}: stop what holds it, or pick another port: `huifang demo --port {free}` "
        f"(or HUIFANG_PORT={free})"
    )


def _free_port_after(host: str, port: int) -> int:
    """A port above `port` that is free now (for the advice only)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port + 1, min(port + 50, 65536)):
        with closing(socket.socket(family, socket.SOCK_STREAM)) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return candidate
    return 8080


def demo_app(settings: Settings) -> tuple[FastAPI, Runtime]:
    """The app on the demo database (`settings` from `demo_settings`), click-to-call wired."""
    from huifang.api.app import create_app

    runtime = build_runtime(settings)
    runtime.services[TELEPHONY_SERVICE] = SimProvider(
        make_survey_call_factory(runtime),
        PersonaBook(),
        clock=runtime.clock,
        recordings_dir=settings.recordings_dir,
        max_channels=settings.max_channels,
    )
    return create_app(runtime), runtime
