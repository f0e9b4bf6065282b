"""Typed FastAPI dependencies: the runtime, a DB session per request, settings, clock.

Rule kept here: a response leaves only after its transaction committed. `SessionDep` is a
`scope="function"` dependency: FastAPI ends it when the route function returns, before the
response is sent (a plain `yield` dependency ends after sending, so a failed commit would
lose an audit event whose action the client already has). A failed commit raises, and the
client gets an error response instead of the one the route built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from huifang.bootstrap import Runtime
from huifang.clock import Clock
from huifang.db import session_scope
from huifang.settings import Settings


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a hop
    # every request would pay (a survey call's webhook turns most of all)
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request: committed when the route function returns (before the
    response is sent), rolled back when it raises."""
    with session_scope(runtime.engine) as session:
        yield session


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_clock(runtime: RuntimeDep) -> Clock:
    return runtime.clock


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
