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
- a dial string is built only from an E.164 number: digits, with one leading `+`;
- what the peer sends is parsed leniently (Asterisk's own output is not always tidy) but
  bounded: a message larger than `MAX_MESSAGE_BYTES` is a `AmiPeerError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import phonenumbers

from huifang.errors import HuifangError, InvalidPhoneNumber, ProtocolInjection

MAX_MESSAGE_BYTES = 1 << 20

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: characters Asterisk's argument splitter treats specially inside a `Variable` header
_SPLITTER_SPECIALS = re.compile(r'([\\,"()\[\]])')


class AmiPeerError(HuifangError):
    """Asterisk (or whatever answered on the AMI port) sent something we cannot read."""


@dataclass(frozen=True, slots=True)
class AmiGreeting:
    """The first line of a session: `Asterisk Call Manager/11.0.0`."""

    text: str


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One response or event: its headers in wire order. Names compare case-insensitively."""

    headers: tuple[tuple[str, str], ...]
    _index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for name, value in self.headers:
            index.setdefault(name.lower(), value)
        object.__setattr__(self, "_index", index)

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
        return self.get("Event")

    @property
    def response(self) -> str:
        """`Success`, `Error`, `Goodbye`, `Follows` — empty for an event."""
        return "" if self.is_event else self.get("Response")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")


AmiItem = AmiGreeting | AmiMessage


class AmiParser:
    """Turns the byte stream from Asterisk into a greeting followed by messages.

    Lines end in CRLF (a lone LF is accepted too); a message ends at an empty line.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._message_bytes = 0
        self._greeted = False

    def feed(self, data: bytes) -> list[AmiItem]:
        """Add bytes as they arrived (any split) and return what they completed."""
        self._buffer += data
        items: list[AmiItem] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) != -1:
            line = bytes(self._buffer[start:end]).rstrip(b"\r").decode("utf-8", "replace")
            self._message_bytes += end + 1 - start
            start = end + 1
            item = self._line(line)
            if item is not None:
                items.append(item)
        del self._buffer[:start]
        if self._message_bytes + len(self._buffer) > MAX_MESSAGE_BYTES:
            raise AmiPeerError(f"AMI message larger than {MAX_MESSAGE_BYTES} bytes")
        return items

    def _line(self, line: str) -> AmiItem | None:
        if not self._greeted:
            self._greeted = True
            if not line.startswith("Asterisk Call Manager/"):
                raise AmiPeerError(f"not an Asterisk manager: greeting {line[:80]!r}")
            return AmiGreeting(line)
        if not line:
            if not self._headers:
                return None  # stray blank line between messages
            message = AmiMessage(tuple(self._headers))
            self._headers.clear()
            self._message_bytes = 0
            return message
        name, sep, value = line.partition(":")
        if not sep:
            # a continuation line (old `Command` output): keep it rather than fail the session
            self._headers.append(("", line))
        else:
            self._headers.append((name.strip(), value[1:] if value.startswith(" ") else value))
        return None


def check_value(field_name: str, value: str) -> str:
    """Return `value` if it can travel in a header or argument; else raise ProtocolInjection."""
    if _CONTROL.search(value):
        raise ProtocolInjection(f"{field_name}: control characters are not allowed ({value!r})")
    return value


def serialize_action(action: str, action_id: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """The bytes of one action. Every name and value is checked before anything is built."""
    lines = [("Action", action), ("ActionID", action_id), *headers]
    out: list[str] = []
    for name, value in lines:
        if not _TOKEN.fullmatch(name):
            raise ProtocolInjection(f"AMI header name {name!r} is not a token")
        out.append(f"{name}: {check_value(name, value)}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8")


def variable_header(name: str, value: str) -> tuple[str, str]:
    """A `Variable: name=value` header whose value survives Asterisk's comma splitting."""
    if not _VARIABLE_NAME.fullmatch(name):
        raise ProtocolInjection(f"variable name {name!r}: letters, digits and _ only")
    escaped = _SPLITTER_SPECIALS.sub(r"\\\1", check_value(f"variable {name}", value))
    return ("Variable", f"{name}={escaped}")


def dial_string(template: str, e164: str, region: str = "CN") -> str:
    """Fill a channel template from a validated E.164 number.

    Placeholders: `{number}` the number as dialled from `region` (13800000001 for a Chinese
    mobile, 00… abroad), `{e164}` with its `+`, `{digits}` the E.164 digits without `+`.
    """
    if not _E164.fullmatch(e164):
        raise InvalidPhoneNumber(f"{e164!r} is not an E.164 number; normalize it first")
    parsed = phonenumbers.parse(e164, None)
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{e164!r} is not a valid phone number")
    dialled = phonenumbers.format_out_of_country_calling_number(parsed, region)
    number = re.sub(r"[^0-9+]", "", dialled)
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
