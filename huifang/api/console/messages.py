"""The console's refusals and errors in the reader's language.

The domain, the auth layer and the validators explain a refusal in English, naming the field
(`retry_at: at most 14 days ahead`): the API and the CLI pass that on as it is. A Chinese
console page must not, so this module turns such a message into Chinese:
- a known message (a pattern below) becomes its Chinese sentence, keeping the figures;
- any other `field: reason` message names the field in Chinese when the catalogue knows the
  field, and asks the user to check it;
- anything else becomes a generic sentence for its kind (not found, not allowed, changed
  meanwhile), never the English text.
English pages get the message unchanged. A message with no Latin letters is already Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from huifang.api.console.i18n import translate

_LATIN = re.compile(r"[A-Za-z]{2,}")

#: (pattern, catalogue key); the pattern's named groups fill the key's `{placeholders}`
_KNOWN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), key)
    for p, key in [
        (r"too many failed logins; try again in (?P<n>\d+) s", "msg_login_throttled"),
        (r"\(\w+\): claimed by another agent, or resolved$", "msg_claimed_by_other"),
        (r"you do not hold a live claim on it$", "msg_no_live_claim"),
        (r"^retry_after: must lie in the future", "msg_retry_in_future"),
        (r"^retry_at: at most (?P<n>\d+) days ahead", "msg_retry_at_most"),
        (r"^retry_at: a date and time", "msg_retry_date_time"),
        (r"^findings: a ticket needs", "msg_findings_needed"),
        (r"^phone: the agent has no phone", "msg_agent_no_phone"),
        (r"cannot bridge calls", "msg_cannot_bridge"),
        (r"^password: at least (?P<n>\d+) characters", "msg_password_short"),
        (r"^username: '(?P<name>.*)' is taken", "msg_username_taken"),
        (r"^code: a unit with code '(?P<code>.*)' exists already", "msg_unit_code_taken"),
        (r"^parent_id: a \w+ cannot sit under the \w+ '(?P<name>.*)':", "msg_unit_level"),
        (r"^review item \d+ was labelled \w+ by (?P<who>.+) already", "msg_review_labelled"),
        (r"^text: describe the rectification", "msg_rectification_needed"),
        (r"^handled_to: .* is before handled_from", "msg_handled_range"),
        (r"^active: an admin cannot deactivate", "msg_admin_self_deactivate"),
        (r"^role: an admin cannot remove", "msg_admin_self_role"),
        (r"^unit_id: a supervisor belongs to a unit", "msg_supervisor_unit"),
        (r"the database is busy or unreachable", "error_503"),
        (r"CSRF check failed", "msg_csrf"),
        (r"does not exist|^no such|^Not Found$", "error_404"),
        (r"^only |needs role|not readable with role|not with role|outside your unit|^Forbidden$",
         "error_403"),
        (r"meanwhile|already", "error_409"),
        (r"^Method Not Allowed$", "error_405"),
    ]
]  # fmt: skip
#: the script validator's findings (huifang.ivr.script), as the script editor shows them
_SCRIPT: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), key)
    for p, key in [
        (r"^unknown field$", "msg_script_unknown_field"),
        (r"^missing", "msg_script_missing"),
        (r"^key given twice$", "msg_script_twice"),
        (r"^YAML syntax", "msg_script_yaml"),
        (r"^YAML read this as true/false", "msg_script_boolean"),
        (r"^'(?P<id>[^']*)' is reserved", "msg_script_reserved"),
        (r"^'(?P<id>[^']*)' is already", "msg_script_used"),
        (r"^no question '(?P<id>[^']*)'", "msg_script_no_question"),
        (r"^unreachable: nothing leads to '(?P<id>[^']*)'", "msg_script_unreachable"),
        (r"^loop with no exit", "msg_script_loop"),
        (r"^no text for (?P<lang>\S+)", "msg_script_no_text"),
        (r"needs at least one choice|has no choices", "msg_script_no_choices"),
        (r"^'(?P<id>[^']*)' is not one key", "msg_script_one_key"),
        (r"^an empty phrase", "msg_script_empty_phrase"),
        (r"takes no keys|takes no speech|waits for no answer|goes nowhere next|"
         r"but no choice has phrases", "msg_script_not_here"),
    ]
]  # fmt: skip
_FIELD = re.compile(r"^(?P<field>[a-z_]+(?:\[\d+\])?)(?:\.[a-z_]+)*: ")
#: pydantic's error types, as a reader of a form would say them
_INPUT_ERRORS = {
    "missing": "msg_input_missing",
    "string_too_long": "msg_input_too_long",
    "string_too_short": "msg_input_missing",
    "int_parsing": "msg_input_not_number",
    "float_parsing": "msg_input_not_number",
    "less_than_equal": "msg_input_out_of_range",
    "greater_than_equal": "msg_input_out_of_range",
    "greater_than": "msg_input_out_of_range",
    "less_than": "msg_input_out_of_range",
    "date_from_datetime_parsing": "msg_input_not_date",
    "datetime_from_date_parsing": "msg_input_not_date",
    "date_parsing": "msg_input_not_date",
    "datetime_parsing": "msg_input_not_date",
    "literal_error": "msg_input_not_choice",
    "enum": "msg_input_not_choice",
}


def _fill(key: str, lang: str, values: Mapping[str, str]) -> str:
    text = translate(key, lang)
    return text.format(**values) if values else text


def field_label(field: str, lang: str) -> str | None:
    """The catalogue's name of a form field, when it has one."""
    label = translate(field, lang)
    return None if label == field else label


def localize(message: str, lang: str, fallback: str = "msg_check_input") -> str:
    """`message` for a reader of `lang`: unchanged in English, in Chinese otherwise."""
    if lang == "en-US" or not _LATIN.search(message):
        return message
    for pattern, key in _KNOWN:
        found = pattern.search(message)
        if found:
            return _fill(key, lang, found.groupdict())
    field = _FIELD.match(message)
    if field:
        label = field_label(field["field"], lang)
        if label:
            return _fill("msg_field_invalid", lang, {"field": label})
    return translate(fallback, lang)


def localize_script_error(message: str, lang: str) -> str:
    """One finding of the script validator in the editor's language."""
    if lang == "en-US":
        return message
    for pattern, key in _SCRIPT:
        found = pattern.search(message)
        if found:
            return _fill(key, lang, found.groupdict())
    return translate("msg_script_invalid_value", lang)


def localize_input_errors(errors: Sequence[Mapping[str, Any]], lang: str) -> str:
    """Pydantic's complaints about a submitted form, one sentence per field."""
    sentences = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        if lang == "en-US":
            sentences.append(f"{'.'.join(location)}: {error.get('msg', '')}".lstrip(": "))
            continue
        reason = translate(_INPUT_ERRORS.get(str(error.get("type")), "msg_input_invalid"), lang)
        label = field_label(location[-1], lang) if location else None
        sentences.append(f"{label}：{reason}" if label else reason)
    separator = "; " if lang == "en-US" else "；"
    return separator.join(dict.fromkeys(sentences))
