"""Prompt and SMS templates: `{name}` placeholders filled from the incident and contact.

Rules this module keeps:
- A placeholder is `{` + an identifier + `}` and nothing else: no attribute access, no
  indexing, no expressions, no filters. `{{` and `}}` stand for literal braces.
- Rendering is one pass over the *template*: a value that contains braces is copied as it
  is and never read as a template again.
- Control characters in values (CR, LF, NUL, …) become spaces: a rendered prompt is spoken
  or sent by SMS, and a line break smuggled in through an incident field must not reach a
  TTS command line or an AGI argument.
- The catalogue of names a script may use is `KNOWN_VARIABLES`; everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from huifang.errors import HuifangError

#: every variable a script may use, with what the app puts in it
KNOWN_VARIABLES: dict[str, str] = {
    "incident_date": "the day of the call or case, spoken naturally (11月22日 / November 22)",
    "incident_time": "the time of the call or case (14点30分 / 2:30 PM)",
    "source": "the number the citizen called (110, 12345)",
    "unit_name": "the unit that handled the case (e.g. 城关派出所)",
    "category": "the kind of case (e.g. 纠纷 / a dispute)",
    "reference": "the case reference the citizen can quote back",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_SAMPLES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "incident_date": "11月22日",
        "incident_time": "14点30分",
        "source": "110",
        "unit_name": "城关派出所",
        "category": "纠纷",
        "reference": "20261122-0042",
    },
    "en-US": {
        "incident_date": "November 22",
        "incident_time": "2:30 PM",
        "source": "110",
        "unit_name": "Central Station",
        "category": "a dispute",
        "reference": "20261122-0042",
    },
}


class TemplateError(HuifangError, ValueError):
    """A template is malformed or names a variable it may not use."""


@dataclass(frozen=True, slots=True)
class _Literal:
    text: str


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str


@lru_cache(maxsize=4096)
def _segments(template: str) -> tuple[_Literal | _Variable, ...]:
    """The template's pieces, parsed once per template (a call renders the same few prompts
    over and over; a malformed template raises every time, it is never cached)."""
    segments: list[_Literal | _Variable] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch in "{}" and template[i : i + 2] in ("{{", "}}"):
            literal.append(ch)
            i += 2
        elif ch == "{":
            end = template.find("}", i)
            if end < 0:
                raise TemplateError(
                    f"'{{' at character {i + 1} is never closed (write '{{{{' for a brace)"
                )
            name = template[i + 1 : end].strip()
            if not _NAME.fullmatch(name):
                raise TemplateError(f"'{template[i : end + 1]}' is not a variable name")
            if literal:
                segments.append(_Literal("".join(literal)))
                literal = []
            segments.append(_Variable(name))
            i = end + 1
        elif ch == "}":
            raise TemplateError(f"'}}' at character {i + 1} has no opening '{{' (write '}}}}')")
        else:
            literal.append(ch)
            i += 1
    if literal:
        segments.append(_Literal("".join(literal)))
    return tuple(segments)


def template_variables(template: str) -> list[str]:
    """The variable names `template` uses, in order, without repeats; raises TemplateError
    when it is malformed or uses a name outside KNOWN_VARIABLES."""
    names: list[str] = []
    for segment in _segments(template):
        if isinstance(segment, _Variable) and segment.name not in names:
            if segment.name not in KNOWN_VARIABLES:
                known = ", ".join(KNOWN_VARIABLES)
                raise TemplateError(f"unknown variable {{{segment.name}}}; known: {known}")
            names.append(segment.name)
    return names


def render_template(template: str, variables: Mapping[str, str]) -> str:
    """Fill `template` from `variables`; raises TemplateError for a missing value."""
    parts: list[str] = []
    for segment in _segments(template):
        if isinstance(segment, _Literal):
            parts.append(segment.text)
            continue
        if segment.name not in variables:
            raise TemplateError(f"no value for {{{segment.name}}}")
        parts.append(_CONTROL.sub(" ", str(variables[segment.name])))
    return "".join(parts)


def sample_variables(language: str) -> dict[str, str]:
    """Plausible values for previews (`script render`, `script try`)."""
    return dict(_SAMPLES.get(language, _SAMPLES["en-US"]))


def incident_variables(
    *,
    occurred_at: datetime,
    language: str,
    source: str,
    unit_name: str,
    category: str,
    reference: str,
) -> dict[str, str]:
    """The variables of one incident, with its date and time worded for `language`.

    `occurred_at` must already be in the deployment's time zone: a citizen remembers the
    local day they called, not the UTC one.
    """
    if language == "zh-CN":
        day = f"{occurred_at.month}月{occurred_at.day}日"
        clock = f"{occurred_at.hour}点{occurred_at.minute:02d}分"
    else:
        day = f"{occurred_at:%B} {occurred_at.day}"
        clock = f"{occurred_at.hour % 12 or 12}:{occurred_at.minute:02d} {'AM' if occurred_at.hour < 12 else 'PM'}"
    return {
        "incident_date": day,
        "incident_time": clock,
        "source": source,
        "unit_name": unit_name,
        "category": category,
        "reference": reference,
    }
