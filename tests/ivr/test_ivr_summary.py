"""An unsatisfied call's escalation summary names what the citizen was unhappy with, in
the citizen's language, not the question ids."""

from __future__ import annotations

from huifang.ivr.script import builtin_script, parse_script
from huifang.ivr.summary import topic, unsatisfied_summary


def test_mandarin_summary_names_the_dimensions() -> None:
    script = builtin_script("survey-110.zh-CN")
    assert unsatisfied_summary(script, ["attitude", "arrival_time"]) == "不满意：服务态度、到场时间"


def test_english_summary_names_the_dimensions() -> None:
    script = builtin_script("survey-110.en-US")
    assert unsatisfied_summary(script, ["handling"]) == "Unsatisfied with how the case was handled"


def test_a_question_of_no_known_dimension_is_named_by_its_prompt() -> None:
    script = parse_script(
        """
name: t
language: zh-CN
defaults: {no_input_prompt: 没有听到。, invalid_prompt: 输入有误。}
questions:
  - id: parking
    dimension: other
    prompt: 请对停车引导进行评价：满意请按1，不满意请按3。
    choices:
      - {digit: 1, outcome: satisfied}
      - {digit: 3, outcome: unsatisfied}
closing: 再见。
"""
    )
    assert topic(script, "parking") == "请对停车引导进行评价"
