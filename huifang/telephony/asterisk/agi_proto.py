"""FastAGI wire format, without I/O.

A FastAGI session is: Asterisk sends an environment block (`agi_*: value` lines, then an
empty line); we send one command line at a time and read one reply per command. Bytes from
Asterisk go into `AgiParser.feed`, which returns what they complete; commands are built by
the functions below, which return the line to write.

Rules this module keeps:
- lines end in LF both ways;
- the `HANGUP` line is out of band: it may come before the reply to the command in flight,
  after the reply to `HANGUP`, or with nothing in flight; it is its own item (`AgiHangup`),
  never mistaken for a reply;
- `511` (dead channel) and `result=-1` are hang-ups, whatever the command;
- a `520-` reply spans lines up to `520 End of proper usage.` and is one reply;
- an argument holding a control character (CR, LF, NUL, …), a double quote or a backslash
  is refused with `ProtocolInjection` before any byte is produced; an empty argument or one
  with spaces is sent in double quotes, which Asterisk's argument parser removes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

from huifang.errors import HuifangError, ProtocolInjection

MAX_LINE_BYTES = 64 * 1024

_UNSAFE_ARGUMENT = re.compile(r'[\x00-\x1f\x7f"\\]')
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE_DIGITS = re.compile(r"[0-9*#]*")
_REPLY = re.compile(r"(\d{3})([ -]|$)(.*)")
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?\s*$")
#: keys Asterisk reports as `result=<ASCII code>`
_DTMF = set("0123456789*#ABCD")


class AgiPeerError(HuifangError):
    """Asterisk sent something that is not FastAGI."""


@dataclass(frozen=True, slots=True)
class AgiEnvironment:
    """The `agi_*` block Asterisk sends first, keyed without the `agi_` prefix."""

    variables: Mapping[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.variables.get(name, default)

    @property
    def script(self) -> str:
        """`agi_network_script` without its query string: `survey` for `…:4573/survey?x=1`."""
        return self.get("network_script").partition("?")[0]

    @property
    def query(self) -> dict[str, str]:
        """The query string of `agi_network_script` (the dialplan's way to pass values)."""
        return dict(parse_qsl(self.get("network_script").partition("?")[2], keep_blank_values=True))

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def channel(self) -> str:
        return self.get("channel")


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply line: `200 result=49 endpos=25760`, `200 result=1 (1001)`, `511 …`."""

    code: int
    result: str = ""
    #: the text in parentheses: a variable's value, `timeout`, `dtmf`, `hangup`
    data: str = ""
    endpos: int | None = None
    text: str = ""

    @property
    def hung_up(self) -> bool:
        return self.code == 511 or (self.code == 200 and self.result == "-1")

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def digit(self) -> str:
        """The key a `STREAM FILE`, `WAIT FOR DIGIT` or `RECORD FILE` stopped on, else ``."""
        if self.code != 200 or self.data not in ("", "dtmf") or not self.result.isdigit():
            return ""
        key = chr(int(self.result)) if int(self.result) < 128 else ""
        return key if key in _DTMF else ""


@dataclass(frozen=True, slots=True)
class AgiHangup:
    """The asynchronous `HANGUP` line: the channel is gone."""


AgiItem = AgiEnvironment | AgiReply | AgiHangup


class AgiParser:
    """Turns the bytes Asterisk sends on a FastAGI connection into items, in order: any
    chunk through `feed`, or one complete line at a time through `feed_line` (a reader that
    splits lines itself, as `asyncio.StreamReader.readuntil` does)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._environment: dict[str, str] | None = {}
        self._usage: list[str] = []

    def feed(self, data: bytes) -> list[AgiItem]:
        self._buffer += data
        items: list[AgiItem] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) != -1:
            line = bytes(self._buffer[start:end]).rstrip(b"\r").decode("utf-8", "replace")
            start = end + 1
            item = self._line(line)
            if item is not None:
                items.append(item)
        del self._buffer[:start]
        if len(self._buffer) > MAX_LINE_BYTES:
            raise AgiPeerError(f"AGI line longer than {MAX_LINE_BYTES} bytes")
        return items

    @property
    def pending(self) -> bool:
        """Whether a line is partly fed (`feed_line` must wait for `feed` to finish it)."""
        return bool(self._buffer)

    def feed_line(self, line: bytes) -> AgiItem | None:
        """One complete line (its LF included or not): the item it completes, if any."""
        if self._buffer:
            raise AgiPeerError("feed_line after a partial line was fed")
        if len(line) > MAX_LINE_BYTES:
            raise AgiPeerError(f"AGI line longer than {MAX_LINE_BYTES} bytes")
        return self._line(line.rstrip(b"\r\n").decode("utf-8", "replace"))

    def _line(self, line: str) -> AgiItem | None:
        if self._environment is not None:
            return self._environment_line(line)
        if line == "HANGUP":
            return AgiHangup()
        if self._usage:
            self._usage.append(line)
            if line.startswith("520 "):
                text = "\n".join(self._usage)
                self._usage = []
                return AgiReply(520, text=text)
            return None
        if not line:
            return None
        return parse_reply(line, self._usage)

    def _environment_line(self, line: str) -> AgiEnvironment | None:
        assert self._environment is not None
        if not line:
            environment = AgiEnvironment(self._environment)
            self._environment = None
            return environment
        name, sep, value = line.partition(":")
        if not sep or not name.startswith("agi_"):
            raise AgiPeerError(f"not an AGI environment line: {line[:80]!r}")
        self._environment[name[4:]] = value[1:] if value.startswith(" ") else value
        return None


#: replies already read, by their line: a call hears the same few (`200 result=0 endpos=…`,
#: the keys) again and again, and an `AgiReply` is immutable, so one object serves them all
_KNOWN_REPLIES: dict[str, AgiReply] = {}
_KNOWN_REPLIES_KEPT = 4096


def parse_reply(line: str, usage: list[str] | None = None) -> AgiReply | None:
    """One reply line; a `520-` line starts a multi-line usage reply collected in `usage`."""
    known = _KNOWN_REPLIES.get(line)
    if known is not None:
        return known
    reply = _parse_reply(line, usage)
    if reply is not None:
        if len(_KNOWN_REPLIES) >= _KNOWN_REPLIES_KEPT:
            _KNOWN_REPLIES.clear()
        _KNOWN_REPLIES[line] = reply
    return reply


def _parse_reply(line: str, usage: list[str] | None) -> AgiReply | None:
    match = _REPLY.match(line)
    if not match:
        raise AgiPeerError(f"not an AGI reply: {line[:80]!r}")
    code, sep, rest = int(match[1]), match[2], match[3]
    if sep == "-":
        if usage is None:
            raise AgiPeerError(f"multi-line reply where one line was expected: {line[:80]!r}")
        usage.append(line)
        return None
    if code != 200:
        return AgiReply(code, text=rest)
    result = _RESULT.match(rest)
    if not result:
        raise AgiPeerError(f"200 reply without result=: {line[:80]!r}")
    endpos = int(result[3]) if result[3] is not None else None
    return AgiReply(200, result[1], result[2] or "", endpos, rest)


# --- commands


def _argument(value: str, *, quote: bool = False) -> str:
    if _UNSAFE_ARGUMENT.search(value):
        raise ProtocolInjection(
            f"AGI argument {value!r}: quotes, backslashes and control characters are not allowed"
        )
    return f'"{value}"' if quote or not value or " " in value else value


def _escape_digits(digits: str) -> str:
    if not _ESCAPE_DIGITS.fullmatch(digits):
        raise ProtocolInjection(f"escape digits {digits!r}: only 0-9, * and #")
    return f'"{digits}"'


def _line(*words: str) -> bytes:
    return (" ".join(words) + "\n").encode("utf-8")


_ANSWER = b"ANSWER\n"
_HANGUP = b"HANGUP\n"


def answer() -> bytes:
    return _ANSWER


def hangup() -> bytes:
    return _HANGUP


def get_variable(name: str) -> bytes:
    if not _VARIABLE_NAME.fullmatch(name):
        raise ProtocolInjection(f"variable name {name!r}: letters, digits and _ only")
    return _line("GET VARIABLE", name)


def set_variable(name: str, value: str) -> bytes:
    if not _VARIABLE_NAME.fullmatch(name):
        raise ProtocolInjection(f"variable name {name!r}: letters, digits and _ only")
    return _line("SET VARIABLE", name, _argument(value))


@lru_cache(maxsize=4096)
def stream_file(path: str, escape_digits: str = "") -> bytes:
    """Play `path` (no extension); a key from `escape_digits` interrupts it (barge-in).
    Built once per prompt and digits (a refused argument raises every time)."""
    return _line("STREAM FILE", _argument(path), _escape_digits(escape_digits))


def wait_for_digit(timeout_ms: int) -> bytes:
    return b"WAIT FOR DIGIT %d\n" % int(timeout_ms)


def get_data(path: str, timeout_ms: int, max_digits: int) -> bytes:
    return _line("GET DATA", _argument(path), str(int(timeout_ms)), str(int(max_digits)))


def record_file(
    path: str,
    escape_digits: str,
    timeout_ms: int,
    silence_seconds: int,
    fmt: str = "wav",
    *,
    offset: int = 0,
) -> bytes:
    """Record to `path`.`fmt` until a key from `escape_digits`, `silence_seconds` of silence
    or `timeout_ms`. `offset` (samples) continues an earlier recording of the same file from
    there (Asterisk appends); given as a number, it also keeps Asterisk from beeping."""
    words = ["RECORD FILE", _argument(path), _argument(fmt), _escape_digits(escape_digits)]
    words += [str(int(timeout_ms)), str(int(offset))]
    if silence_seconds > 0:
        words.append(f"s={int(silence_seconds)}")
    return _line(*words)


def goto(context: str, extension: str, priority: int = 1) -> list[bytes]:
    """Where the dialplan resumes once the AGI session ends (used to hand a call over)."""
    return [
        _line("SET CONTEXT", _argument(context)),
        _line("SET EXTENSION", _argument(extension)),
        _line("SET PRIORITY", str(int(priority))),
    ]
