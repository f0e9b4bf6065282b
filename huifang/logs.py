"""Logging for every `huifang` process: one line per event, with time and level,
human-readable by default and one JSON object per line with `HUIFANG_LOG_FORMAT=json`.

Rules kept here:
- set up once per process, by the command line, before any command runs; setting up again
  replaces only the handler set up before (others' handlers, a test runner's, stay), and
  the handler writes to whatever `sys.stderr` is at the time;
- a call attempt's state change is one line (`attempt_changed`) carrying the attempt id,
  its new state (outcome) and the cause as fields: JSON keeps them as keys, the text
  format reads `attempt 12: no_answer (no_answer)`;
- libraries' chatter (alembic's start-up) is kept at WARNING; their warnings still show.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: fields a record may carry (`extra=`) that the JSON format keeps as keys
ATTEMPT_FIELDS = ("attempt", "outcome", "cause")
_QUIET = ("alembic",)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    attempt fields when present, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ATTEMPT_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StandardError(logging.StreamHandler[TextIO]):
    """Writes to the current `sys.stderr`, not the one there was at set-up."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(fmt: LogFormat = "text", level: str = "INFO") -> None:
    """Send every logger's records to standard error in `fmt`, from `level` up."""
    handler = _StandardError()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StandardError)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def attempt_changed(
    log: logging.Logger, attempt_id: int, state: str, cause: str = "", *, level: int = logging.INFO
) -> None:
    """The one line of a call attempt's state change."""
    detail = f" ({cause})" if cause else ""
    log.log(
        level,
        "attempt %s: %s%s",
        attempt_id,
        state,
        detail,
        extra={"attempt": attempt_id, "outcome": str(state), "cause": cause},
    )
