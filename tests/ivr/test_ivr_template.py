"""Templates: only known names, no expressions, values never read as templates."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huifang.ivr.template import (
    KNOWN_VARIABLES,
    TemplateError,
    incident_variables,
    render_template,
    sample_variables,
    template_variables,
)


def test_placeholders_are_filled():
    assert (
        render_template("{unit_name} on {incident_date}", {"unit_name": "A", "incident_date": "B"})
        == "A on B"
    )


def test_doubled_braces_are_literal_braces():
    assert render_template("{{x}} {source}", {"source": "110"}) == "{x} 110"


def test_a_value_with_braces_is_not_read_again():
    assert render_template("{unit_name}", {"unit_name": "{source}", "source": "110"}) == "{source}"


def test_control_characters_in_values_become_spaces():
    assert render_template("[{unit_name}]", {"unit_name": "a\r\nb\x00c"}) == "[a  b c]"


def test_a_missing_value_is_an_error():
    with pytest.raises(TemplateError, match=r"no value for \{source\}"):
        render_template("{source}", {})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{unit_name.upper}", "'{unit_name.upper}' is not a variable name"),
        ("{unit_name[0]}", "'{unit_name[0]}' is not a variable name"),
        ("{1+1}", "'{1+1}' is not a variable name"),
        ("{}", "'{}' is not a variable name"),
        ("hello {source", "is never closed"),
        ("hello } there", "has no opening"),
        ("{password}", "unknown variable {password}"),
    ],
)
def test_malformed_or_unknown_placeholders_are_refused(template, message):
    with pytest.raises(TemplateError, match=re.escape(message)):
        template_variables(template)


def test_variables_are_listed_once_in_order():
    assert template_variables("{source}{unit_name}{source}") == ["source", "unit_name"]


@given(st.text())
def test_any_text_either_parses_or_raises_template_error(text):
    try:
        names = template_variables(text)
    except TemplateError:
        return
    assert set(names) <= set(KNOWN_VARIABLES)


@given(st.text(), st.text())
def test_a_value_is_copied_verbatim_apart_from_control_characters(prefix, value):
    template = prefix.replace("{", "{{").replace("}", "}}") + "{unit_name}"
    rendered = render_template(template, {"unit_name": value})
    expected_value = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in value)
    assert rendered == prefix + expected_value


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
def test_samples_cover_every_known_variable(language):
    assert set(sample_variables(language)) == set(KNOWN_VARIABLES)


def test_incident_variables_word_the_date_in_chinese():
    values = incident_variables(
        occurred_at=datetime(2026, 11, 22, 14, 5),
        language="zh-CN",
        source="110",
        unit_name="城关派出所",
        category="纠纷",
        reference="R1",
    )
    assert (values["incident_date"], values["incident_time"]) == ("11月22日", "14点05分")


def test_incident_variables_word_the_date_in_english():
    values = incident_variables(
        occurred_at=datetime(2026, 11, 22, 0, 30),
        language="en-US",
        source="110",
        unit_name="Central",
        category="a dispute",
        reference="R1",
    )
    assert (values["incident_date"], values["incident_time"]) == ("November 22", "12:30 AM")
    assert set(values) == set(KNOWN_VARIABLES)
