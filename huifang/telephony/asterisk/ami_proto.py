"""Asterisk Manager Interface (AMI) wire format, without I/O.

Bytes from Asterisk go into `AmiParser.feed`, which returns the greeting and the complete
messages they finish; actions go through `serialize_action`, which returns the bytes to write.
`originate_headers` builds an `Originate` from a validated phone number.

Rules this module keeps:
- nothing leaves it unchecked: a header name is a token, a header value holds no control
  character (CR, LF, NUL, DEL, …); a bad value raises `ProtocolInjection` *before* any byte
  is produced, so a crafted number, variable or caller id can never smuggle in an action;
- `Variable` values are escaped for Asterisk's argument splitter (`,` `"` `\\` `(` `)` `[`
  `]`), so a comma in a value stays in the value instead of starting a new variable;
- a dial string is built only from an E.164 number: digits, with one leading `+`. The
  number was validated once, when it entered the system (`huifang.phones.normalize_phone`);
  it is not parsed again here, only held to that shape (which admits no control character);
- what the peer sends is parsed leniently (Asterisk's own output is not always tidy) but
  bounded: a message larger than `MAX_MESSAGE_BYTES` is a `AmiPeerError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from huifang.errors import HuifangError, InvalidPhoneNumber, ProtocolInjection
from huifang.phones import dialled_number

MAX_MESSAGE_BYTES = 1 << 20

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BESIDES_CRLF = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
#: characters Asterisk's argument splitter treats specially inside a `Variable` header
_SPLITTER_SPECIALS = re.compile(r'([\\,"()\[\]])')


class AmiPeerError(HuifangError):
    """Asterisk (or whatever answered on the AMI port) sent something we cannot read."""


@dataclass(frozen=True, slots=True)
class AmiGreeting:
    """The first line of a session: `Asterisk Call Manager/11.0.0`."""

    text: str


class AmiMessage:
    """One response or event: its headers in wire order. Names compare case-insensitively.

    Immutable by convention; a plain slotted class rather than a frozen dataclass because
    the parser builds thousands a second and hands over the index it built as it read."""

    __slots__ = ("headers", "_index")

    def __init__(
        self, headers: tuple[tuple[str, str], ...], index: dict[str, str] | None = None
    ) -> None:
        self.headers = headers
        if index is None:
            index = {}
            for name, value in headers:
                index.setdefault(name.lower(), value)
        self._index = index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AmiMessage) and other.headers == self.headers

    def __hash__(self) -> int:
        return hash(self.headers)

    def __repr__(self) -> str:
        return f"AmiMessage({self.headers!r})"

    def get(self, name: str, default: str = "") -> str:
        """The first value of header `name`, or `default`."""
        return self._index.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    @property
    def is_event(self) -> bool:
        # an OriginateResponse event carries a `Response` header too: `Event` decides
        return "event" in self._index

    @property
    def event(self) -> str:
        return self._index.get("event", "")

    @property
    def response(self) -> str:
        """`Success`, `Error`, `Goodbye`, `Follows` — empty for an event."""
        index = self._index
        return "" if "event" in index else index.get("response", "")

    @property
    def action_id(self) -> str:
        return self._index.get("actionid", "")


AmiItem = AmiGreeting | AmiMessage


class AmiParser:
    """Turns the byte stream from Asterisk into a greeting followed by messages.

    Lines end in CRLF (a lone LF is accepted too); a message ends at an empty line. The
    complete lines of each chunk are decoded at once and split, not one by one: a busy
    manager sends tens of thousands of lines a second.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._headers: list[tuple[str, str]] = []
        self._index: dict[str, str] = {}
        self._message_bytes = 0
        self._greeted = False

    def feed(self, data: bytes) -> list[AmiItem]:
        """Add bytes as they arrived (any split) and return what they completed."""
        buffer = self._buffer + data if self._buffer else data
        end = buffer.rfind(b"\n")
        if end == -1:
            self._buffer = buffer
            if self._message_bytes + len(buffer) > MAX_MESSAGE_BYTES:
                raise AmiPeerError(f"AMI message larger than {MAX_MESSAGE_BYTES} bytes")
            return []
        self._buffer = buffer[end + 1 :]
        text = buffer[:end].decode("utf-8", "replace")
        items: list[AmiItem] = []
        headers, index = self._headers, self._index
        size = self._message_bytes
        for line in text.split("\n"):
            size += len(line) + 1  # characters, not bytes: a bound, not an account
            if line.endswith("\r"):
                line = line[:-1]
            if line:
                if not self._greeted:
                    items.append(self._greeting(line))
                    continue
                name, sep, value = line.partition(":")
                if not sep:
                    # a continuation line (old `Command` output): kept rather than failing
                    headers.append(("", line))
                    continue
                name = name.strip()
                if value.startswith(" "):
                    value = value[1:]
                headers.append((name, value))
                key = name.lower()
                if key not in index:
                    index[key] = value
                if size > MAX_MESSAGE_BYTES:
                    raise AmiPeerError(f"AMI message larger than {MAX_MESSAGE_BYTES} bytes")
            elif not self._greeted:
                items.append(self._greeting(line))
            elif headers:  # else a stray blank line between messages
                items.append(AmiMessage(tuple(headers), index))
                headers.clear()
                index = self._index = {}
                size = 0
        self._message_bytes = size
        if size + len(self._buffer) > MAX_MESSAGE_BYTES:
            raise AmiPeerError(f"AMI message larger than {MAX_MESSAGE_BYTES} bytes")
        return items

    def _greeting(self, line: str) -> AmiGreeting:
        self._greeted = True
        if not line.startswith("Asterisk Call Manager/"):
            raise AmiPeerError(f"not an Asterisk manager: greeting {line[:80]!r}")
        return AmiGreeting(line)


def check_value(field_name: str, value: str) -> str:
    """Return `value` if it can travel in a header or argument; else raise ProtocolInjection."""
    if _CONTROL.search(value):
        raise ProtocolInjection(f"{field_name}: control characters are not allowed ({value!r})")
    return value


def serialize_action(action: str, action_id: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """The bytes of one action. Every name and value is checked before anything is built."""
    lines = [("Action", action), ("ActionID", action_id), *headers]
    for name, _ in lines:
        if not _TOKEN.fullmatch(name):
            raise ProtocolInjection(f"AMI header name {name!r} is not a token")
    text = "".join([f"{name}: {value}\r\n" for name, value in lines])
    # one scan of the whole action: the only control characters in it are the CRLFs put
    # there, one per header; anything else names the value that brought it
    if (
        _CONTROL_BESIDES_CRLF.search(text)
        or text.count("\n") != len(lines)
        or (text.count("\r") != len(lines))
    ):
        for name, value in lines:
            check_value(name, value)
    return f"{text}\r\n".encode()


def variable_header(name: str, value: str) -> tuple[str, str]:
    """A `Variable: name=value` header whose value survives Asterisk's comma splitting."""
    if not _VARIABLE_NAME.fullmatch(name):
        raise ProtocolInjection(f"variable name {name!r}: letters, digits and _ only")
    escaped = _SPLITTER_SPECIALS.sub(r"\\\1", check_value(f"variable {name}", value))
    return ("Variable", f"{name}={escaped}")


def dial_string(template: str, e164: str, region: str = "CN") -> str:
    """Fill a channel template from an E.164 number `normalize_phone` validated.

    Placeholders: `{number}` the number as dialled from `region` (13800000001 for a Chinese
    mobile, 00… abroad), `{e164}` with its `+`, `{digits}` the E.164 digits without `+`.
    """
    if not _E164.fullmatch(e164):
        raise InvalidPhoneNumber(f"{e164!r} is not an E.164 number; normalize it first")
    # only the placeholders the template names are worked out
    number = dialled_number(e164, region) if "{number}" in template else ""
    try:
        channel = template.format(number=number, e164=e164, digits=e164[1:])
    except (KeyError, IndexError) as exc:
        raise ValueError(f"channel template {template!r}: unknown placeholder {exc}") from exc
    return check_value("channel", channel)


def caller_id(name: str, number: str) -> str:
    """`"Name" <number>`; a quote, angle bracket or control character in either is refused."""
    check_value("caller id name", name)
    check_value("caller id number", number)
    if re.search(r'["<>]', name):
        raise ProtocolInjection(
            f"caller id name {name!r}: quotes and angle brackets are not allowed"
        )
    if number and not re.fullmatch(r"\+?[0-9]{1,20}", number):
        raise ProtocolInjection(f"caller id number {number!r}: digits only")
    if not name:
        return number
    return f'"{name}" <{number}>'


def originate_headers(
    *,
    channel: str,
    context: str,
    channel_id: str,
    timeout_ms: int,
    caller_id: str = "",
    exten: str = "s",
    priority: int = 1,
    variables: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Headers of an asynchronous `Originate` into `context`, whose channel's Uniqueid is
    `channel_id` (every later event of the call carries it)."""
    headers = [
        ("Channel", channel),
        ("Context", context),
        ("Exten", exten),
        ("Priority", str(priority)),
        ("Timeout", str(int(timeout_ms))),
    ]
    if caller_id:
        headers.append(("CallerID", caller_id))
    headers += [("Async", "true"), ("ChannelId", channel_id)]
    headers += [variable_header(name, value) for name, value in (variables or {}).items()]
    for name, value in headers:
        check_value(name, value)
    return headers
