"""Database faults for tests: something done once, just before the first statement that
stores an answer (a survey step's heart) — kill the connection, drop it, lose a commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

Fault = Callable[[Any], None]


def dropped_connection(_conn: Any) -> None:
    """What the driver raises when the server went away under a statement."""
    raise OperationalError(
        "INSERT INTO answers", {}, ConnectionError("server closed the connection")
    )


@contextmanager
def before_first_answer(engine: Engine, fault: Fault) -> Iterator[dict[str, bool]]:
    """Run `fault(connection)` once, before the first INSERT INTO answers; `["done"]` tells."""
    state = {"done": False}

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not state["done"] and "INSERT INTO ANSWERS" in statement.upper():
            state["done"] = True
            fault(conn)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield state
    finally:
        event.remove(engine, "before_cursor_execute", before)
