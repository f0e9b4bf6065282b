"""Invalid scripts are refused with the path of the bad node (and its line, from YAML)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from huifang.ivr.script import (
    ScriptError,
    ScriptInvalid,
    builtin_script,
    builtin_scripts_dir,
    content_hash,
    load_script,
    parse_script,
    parse_script_mapping,
    render_sms,
    validate_script_text,
)


def errors_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ScriptInvalid) as raised:
        parse_script_mapping(doc)
    return [str(error) for error in raised.value.errors]


def test_the_small_script_is_valid(mini_doc):
    assert parse_script_mapping(mini_doc).name == "mini"


def test_a_digit_of_two_keys_is_refused_with_its_path(mini_doc):
    mini_doc["questions"][2]["choices"][1]["digit"] = 12
    assert errors_of(mini_doc) == ["questions[2].choices[1].digit: '12' is not one key"]


def test_a_digit_that_is_no_phone_key_is_refused(mini_doc):
    mini_doc["questions"][1]["choices"][0]["digit"] = "A"
    assert errors_of(mini_doc) == ["questions[1].choices[0].digit: 'A' is not one key"]


def test_duplicate_digits_are_refused(mini_doc):
    mini_doc["questions"][1]["choices"][2]["digit"] = 1
    assert errors_of(mini_doc) == [
        "questions[1].choices[2].digit: '1' is already used by choices[0]"
    ]


def test_the_same_phrase_for_two_choices_is_refused(mini_doc):
    mini_doc["questions"][0]["choices"][1]["phrases"] = ["Good"]
    assert errors_of(mini_doc) == [
        "questions[0].choices[1].phrases: 'Good' is already a phrase of choices[0]"
    ]


def test_an_unreachable_question_is_refused(mini_doc):
    mini_doc["questions"][0]["next"] = "overall"
    assert errors_of(mini_doc) == ["questions[1]: unreachable: nothing leads to 'handling'"]


def test_a_loop_with_no_exit_is_refused(mini_doc):
    mini_doc["questions"][3]["next"] = "overall"
    assert errors_of(mini_doc) == ["questions[3]: loop with no exit: overall → reason → overall"]


def test_a_loop_that_also_strands_later_questions_reports_both(mini_doc):
    mini_doc["questions"][1]["next"] = "attitude"
    errors = errors_of(mini_doc)
    assert "questions[1]: loop with no exit: attitude → handling → attitude" in errors
    assert "questions[2]: unreachable: nothing leads to 'overall'" in errors


def test_a_loop_with_a_way_out_is_accepted(mini_doc):
    mini_doc["questions"][1]["choices"][0]["next"] = "attitude"
    assert parse_script_mapping(mini_doc).questions[1].choices[0].next == "attitude"


def test_a_loop_through_say_questions_only_is_refused(mini_doc):
    mini_doc["questions"][3:] = [
        {"id": "a", "kind": "say", "prompt": "A."},
        {"id": "b", "kind": "say", "prompt": "B.", "next": "a"},
    ]
    assert errors_of(mini_doc) == ["questions[4]: loop with no exit: a → b → a"]


def test_a_missing_prompt_for_the_script_language_is_refused(mini_doc):
    mini_doc["questions"][0]["prompt"] = {"zh-CN": "态度如何？"}
    assert errors_of(mini_doc) == ["questions[0].prompt: no text for en-US"]


def test_a_translation_supplies_the_script_language(mini_doc):
    mini_doc["closing"] = {"zh-CN": "再见。", "en-US": "Goodbye."}
    assert parse_script_mapping(mini_doc).closing.text_for("en-US") == "Goodbye."


def test_a_prompt_in_an_unknown_language_is_refused(mini_doc):
    mini_doc["closing"] = {"fr-FR": "Au revoir."}
    assert errors_of(mini_doc) == [
        "closing: 'fr-FR' is neither text, audio nor a language (zh-CN, en-US)"
    ]


def test_an_unknown_variable_is_refused(mini_doc):
    mini_doc["questions"][0]["prompt"] = "How was {unit}?"
    (error,) = errors_of(mini_doc)
    assert error.startswith("questions[0].prompt: unknown variable {unit}; known: incident_date")


def test_an_expression_in_a_placeholder_is_refused(mini_doc):
    mini_doc["greeting"] = "Hello {unit_name.__class__}"
    assert errors_of(mini_doc) == ["greeting: '{unit_name.__class__}' is not a variable name"]


def test_an_unknown_variable_in_a_translation_names_the_language(mini_doc):
    mini_doc["closing"] = {"en-US": "Bye.", "zh-CN": "{who}再见"}
    (error,) = errors_of(mini_doc)
    assert error.startswith("closing.zh-CN: unknown variable {who}")


def test_an_unknown_variable_in_the_sms_text_is_refused(mini_doc):
    mini_doc["sms_text"] = "Reply about {case}"
    (error,) = errors_of(mini_doc)
    assert error.startswith("sms_text: unknown variable {case}")


def test_a_target_that_names_no_question_is_refused(mini_doc):
    mini_doc["questions"][0]["choices"][2]["next"] = "complaint"
    assert errors_of(mini_doc) == [
        "questions[0].choices[2].next: no question 'complaint' (name a question id, 'closing' or 'hangup')"
    ]


def test_a_transfer_that_also_goes_on_is_refused(mini_doc):
    mini_doc["questions"][0]["choices"][0].update(transfer="agents", next="overall")
    assert errors_of(mini_doc) == [
        "questions[0].choices[0].next: a transferred call goes nowhere next: drop one"
    ]


def test_a_question_id_used_twice_is_refused(mini_doc):
    mini_doc["questions"][2]["id"] = "handling"
    assert errors_of(mini_doc) == ["questions[2].id: 'handling' is already used by questions[1]"]


def test_a_question_id_that_is_a_reserved_target_is_refused(mini_doc):
    mini_doc["questions"][2]["id"] = "closing"
    assert errors_of(mini_doc) == ["questions[2].id: 'closing' is reserved for ending the call"]


def test_a_missing_retry_prompt_is_refused(mini_doc):
    del mini_doc["defaults"]["invalid_prompt"]
    assert errors_of(mini_doc) == [
        "questions[0].invalid_prompt: missing (set it here or under defaults)",
        "questions[1].invalid_prompt: missing (set it here or under defaults)",
        "questions[2].invalid_prompt: missing (set it here or under defaults)",
    ]


def test_a_speech_question_needs_phrases_for_every_choice(mini_doc):
    mini_doc["questions"][0]["input"] = "speech"
    for choice in mini_doc["questions"][0]["choices"]:
        del choice["digit"]
    del mini_doc["questions"][0]["choices"][1]["phrases"]
    assert errors_of(mini_doc) == [
        "questions[0].choices[1].phrases: missing: input 'speech' needs phrases for every choice"
    ]


def test_a_keys_question_needs_a_key_for_every_choice(mini_doc):
    del mini_doc["questions"][1]["choices"][0]["digit"]
    assert errors_of(mini_doc) == [
        "questions[1].choices[0].digit: missing: input 'dtmf' needs a key for every choice"
    ]


def test_a_choice_question_must_say_what_it_measures(mini_doc):
    del mini_doc["questions"][1]["dimension"]
    assert errors_of(mini_doc) == [
        "questions[1].dimension: missing: say what the question measures"
    ]


def test_a_record_question_has_no_choices(mini_doc):
    mini_doc["questions"][3]["choices"] = [{"digit": 1}]
    assert errors_of(mini_doc) == ["questions[3].choices: a 'record' question has no choices"]


def test_an_unknown_outcome_is_refused(mini_doc):
    mini_doc["questions"][1]["choices"][0]["outcome"] = "happy"
    (error,) = errors_of(mini_doc)
    assert error.startswith("questions[1].choices[0].outcome: Input should be 'satisfied'")


def test_an_unknown_field_is_refused(mini_doc):
    mini_doc["questions"][0]["promt"] = "typo"
    assert errors_of(mini_doc) == ["questions[0].promt: unknown field"]


def test_a_missing_field_is_refused(mini_doc):
    del mini_doc["closing"]
    assert errors_of(mini_doc) == ["closing: missing"]


def test_every_problem_is_reported_at_once(mini_doc):
    mini_doc["questions"][1]["choices"][0]["digit"] = "12"
    mini_doc["questions"][2]["prompt"] = "{nope}"
    assert len(errors_of(mini_doc)) == 2


# --- from YAML text


MINI_YAML = """\
name: mini
language: en-US
defaults:
  no_input_prompt: Nothing heard.
  invalid_prompt: Not a choice.
questions:
  - id: overall
    dimension: overall
    prompt: Overall?
    choices:
      - digit: 1
        outcome: satisfied
      - digit: 12
        outcome: unsatisfied
closing: Bye.
"""


def test_errors_from_yaml_carry_the_line_of_the_node():
    (error,) = validate_script_text(MINI_YAML)
    assert error == ScriptError("questions[0].choices[1].digit", "'12' is not one key", 13)


def test_a_missing_field_points_at_the_line_of_its_parent():
    text = MINI_YAML.replace("    prompt: Overall?\n", "")
    errors = validate_script_text(text)
    assert ScriptError("questions[0].prompt", "missing", 7) in errors


def test_a_yaml_syntax_error_is_reported_with_its_line():
    (error,) = validate_script_text("name: x\nquestions: [\n  - id: a\nclosing: : :\n")
    assert error.path == ""
    assert error.line is not None and error.line >= 2
    assert str(error).startswith(f"line {error.line}: YAML syntax:")


def test_a_key_given_twice_is_refused():
    text = MINI_YAML.replace("closing: Bye.\n", "closing: Bye.\nclosing: Again.\n")
    assert [str(e) for e in validate_script_text(text)] == ["closing: key given twice"]


def test_yaml_yes_and_no_get_a_hint_to_quote_them():
    text = MINI_YAML.replace("    prompt: Overall?\n", "    prompt: yes\n")
    (error,) = [e for e in validate_script_text(text) if e.path == "questions[0].prompt"]
    assert "quote it" in error.message


def test_an_alias_bomb_is_refused_before_it_is_expanded():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (error,) = validate_script_text("\n".join(levels) + "\nquestions: *a8\n")
    assert "too large" in error.message


def test_a_document_that_is_not_a_mapping_is_refused():
    assert [str(e) for e in validate_script_text("- a\n- b\n")] == [
        "line 1: a script is a mapping (name:, language:, …)"
    ]


def test_the_same_errors_come_from_parse_and_validate():
    with pytest.raises(ScriptInvalid) as raised:
        parse_script(MINI_YAML)
    assert raised.value.errors == validate_script_text(MINI_YAML)
    assert str(raised.value) == "questions[0].choices[1].digit: '12' is not one key"


def test_errors_serialise_for_the_api():
    (error,) = validate_script_text(MINI_YAML)
    assert error.as_dict() == {
        "path": "questions[0].choices[1].digit",
        "message": "'12' is not one key",
        "line": 13,
    }


def test_a_script_round_trips_through_json_shaped_mappings(mini_doc):
    as_json = yaml.safe_load(yaml.safe_dump(mini_doc, allow_unicode=True))
    assert parse_script_mapping(as_json) == parse_script_mapping(mini_doc)


# --- built-in scripts


@pytest.mark.parametrize("path", sorted(builtin_scripts_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_builtin_script_is_valid(path):
    assert validate_script_text(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", sorted(builtin_scripts_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_builtin_script_is_named_after_its_file(path):
    assert parse_script(path.read_text(encoding="utf-8")).name == path.stem


def test_the_survey_asks_the_three_measured_dimensions_and_overall(call):
    script = call("survey-110.zh-CN").session.script
    dimensions = [q.dimension for q in script.questions]
    assert dimensions[:5] == ["confirm", "attitude", "arrival_time", "handling", "overall"]


def test_sms_text_is_rendered_with_the_incident(call):
    script = call("survey-110.zh-CN").session.script
    sms = render_sms(
        script, {"incident_date": "11月22日", "source": "110", "unit_name": "城关派出所"}
    )
    assert sms.startswith("【公安回访】您好，您于11月22日拨打110报警求助，由城关派出所处置。")


def test_content_hash_changes_with_any_character():
    assert content_hash(MINI_YAML) != content_hash(MINI_YAML + " ")
    assert len(content_hash(MINI_YAML)) == 64


def test_an_unknown_builtin_script_names_the_ones_there_are():
    with pytest.raises(KeyError, match="survey-110.zh-CN"):
        builtin_script("survey-999")


def test_load_script_reads_a_file(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text(MINI_YAML.replace("digit: 12", "digit: 2"), encoding="utf-8")
    assert load_script(path).questions[0].choices[1].digit == "2"


def test_a_script_lists_the_variables_the_app_must_supply(mini):
    assert mini.variables_used == ["unit_name", "incident_date"]


def test_sms_from_a_script_without_sms_text_is_refused(mini_doc):
    del mini_doc["sms_text"]
    with pytest.raises(ValueError, match="has no sms_text"):
        render_sms(parse_script_mapping(mini_doc), {})


def test_the_example_in_the_scripts_readme_is_a_valid_script():
    readme = (builtin_scripts_dir() / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert validate_script_text(example) == []
