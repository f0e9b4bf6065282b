"""A survey's result in words for the people who read it (the escalation an agent opens),
in the script's language: what each question asked about, never its id.

A question that measures a known dimension is named by it (服务态度, "the officers'
attitude"); any other by its prompt, up to the first colon or full stop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from huifang.ivr.script import Script

TOPICS = {
    "zh-CN": {
        "attitude": "服务态度",
        "arrival_time": "到场时间",
        "handling": "处置结果",
        "overall": "总体评价",
        "second_callback": "整改结果",
    },
    "en-US": {
        "attitude": "the officers' attitude",
        "arrival_time": "the arrival time",
        "handling": "how the case was handled",
        "overall": "the service overall",
        "second_callback": "the rectification",
    },
}
UNSATISFIED = {"zh-CN": ("不满意：", "、"), "en-US": ("Unsatisfied with ", ", ")}
_FIRST_CLAUSE = re.compile(r"[：:。.？?]")


def topic(script: Script, question_id: str) -> str:
    """What the question `question_id` of `script` asks about, in the script's language."""
    language = script.language.value
    question = script.questions[script.index_of(question_id)]
    known = TOPICS.get(language, TOPICS["en-US"]).get(question.dimension or "")
    if known:
        return known
    text = question.prompt.text_for(language) or question_id
    return _FIRST_CLAUSE.split(text, maxsplit=1)[0].strip() or question_id


def unsatisfied_summary(script: Script, question_ids: Iterable[str]) -> str:
    """`不满意：服务态度、到场时间` for the questions answered unsatisfied."""
    lead, joiner = UNSATISFIED.get(script.language.value, UNSATISFIED["en-US"])
    return lead + joiner.join(dict.fromkeys(topic(script, q) for q in question_ids))
