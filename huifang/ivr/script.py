"""Call scripts: the YAML language, its model, and validation that names the bad node.

A script is a greeting, a list of questions and a closing. Questions run in order unless a
choice, `next` or `on_no_answer` says where to go; the targets `closing` (play the closing,
hang up) and `hangup` (hang up at once) end the call. Question kinds:

- `choice` — ask, collect one key and/or speech matched against the choices' phrases;
- `record` — record what the citizen says (a complaint) until silence;
- `say`    — speak and go on.

`only_if: unsatisfied` asks a question only when an earlier answer of the call was
unsatisfied (the complaint recording and the "someone will call you back" sentence).

Rules this module keeps:
- Every problem is a `ScriptError` with the path of the node (`questions[2].choices[1].digit`)
  and, for YAML text, its line; all problems are collected, not only the first.
- The only way to get a `Script` is through these checks: a `Script` that exists is valid,
  so the interpreter never has to guard against a broken one.
- No I/O except `load_script` / `builtin_script`, which read the one file they are given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from huifang.domain.enums import Language, Satisfaction
from huifang.errors import HuifangError
from huifang.ivr.template import (
    KNOWN_VARIABLES,
    TemplateError,
    render_template,
    template_variables,
)

__all__ = [
    "KNOWN_VARIABLES",
    "Choice",
    "Defaults",
    "PromptText",
    "Question",
    "Route",
    "Script",
    "ScriptError",
    "ScriptInvalid",
    "builtin_script",
    "builtin_scripts_dir",
    "content_hash",
    "load_script",
    "parse_script",
    "render_sms",
    "validate_script_text",
]

_YAML_BOOLEAN = "YAML read this as true/false: quote it (yes, no, on and off are booleans in YAML)"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: far above any real script (the built-in survey has about 200 nodes)
MAX_NODES = 5000
MAX_DEPTH = 20
#: targets that end the script instead of naming a question
CLOSING = "closing"
HANGUP = "hangup"
DTMF_KEYS = "0123456789*#"
Dimension = Literal[
    "confirm",
    "attitude",
    "arrival_time",
    "handling",
    "overall",
    "reason",
    "second_callback",
    "other",
]


@dataclass(frozen=True, slots=True)
class ScriptError:
    """One problem in a script: where (`path`, `line`) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return f"line {self.line}: {self.message}" if self.line else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "line": self.line}


class ScriptInvalid(HuifangError, ValueError):
    def __init__(self, errors: list[ScriptError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


# --- the model -------------------------------------------------------------------------


def _prompt_shape(value: Any) -> Any:
    """`"text"`, `{text:, audio:}` or `{zh-CN: …, en-US: …, audio:}` → one shape."""
    if isinstance(value, bool):
        raise ValueError(_YAML_BOOLEAN)
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, dict):
        shaped: dict[str, Any] = {"translations": {}}
        for key, item in value.items():
            if key in ("text", "audio"):
                shaped[key] = item
            elif key in {language.value for language in Language}:
                shaped["translations"][key] = item
            else:
                raise ValueError(f"'{key}' is neither text, audio nor a language (zh-CN, en-US)")
        return shaped
    return value


def _key_shape(value: Any) -> Any:
    # YAML reads `digit: 1` as an int; a key is a character either way
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class PromptText(_Node):
    """What to say: a text per language (`text` is the script's own language) and,
    optionally, an uploaded recording that is played instead of synthesising the text."""

    text: str | None = None
    translations: dict[str, str] = Field(default_factory=dict)
    audio: str | None = None

    def text_for(self, language: str) -> str | None:
        return self.translations.get(language) or self.text


Prompt = Annotated[PromptText, BeforeValidator(_prompt_shape)]


class Route(_Node):
    """Where the call goes after an answer (or after none): say something, set channel
    variables, then go to `next`, or hand the citizen to an agent queue."""

    next: str | None = None
    say: Prompt | None = None
    variables: dict[str, str] = Field(default_factory=dict, alias="set")
    transfer: str | None = None
    not_the_caller: bool = False


class Choice(Route):
    digit: Annotated[str | None, BeforeValidator(_key_shape)] = None
    phrases: tuple[str, ...] = ()
    outcome: Satisfaction | None = None


class Defaults(_Node):
    timeout_seconds: float = Field(default=5.0, gt=0)
    max_no_input: int = Field(default=2, ge=0, description="re-asks after silence")
    max_invalid: int = Field(default=2, ge=0, description="re-asks after a wrong answer")
    no_input_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None
    low_confidence_prompt: Prompt | None = None


class Question(_Node):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", max_length=64)
    kind: Literal["choice", "record", "say"] = "choice"
    dimension: Dimension | None = None
    prompt: Prompt
    input: Literal["dtmf", "speech", "both"] = "dtmf"
    choices: tuple[Choice, ...] = ()
    next: str | None = None
    on_no_answer: Route | None = None
    only_if: Literal["unsatisfied"] | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_no_input: int | None = Field(default=None, ge=0)
    max_invalid: int | None = Field(default=None, ge=0)
    no_input_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None
    low_confidence_prompt: Prompt | None = None
    max_seconds: int = Field(default=60, gt=0, le=600)
    silence_seconds: int = Field(default=3, gt=0, le=30)

    @property
    def takes_digits(self) -> bool:
        return self.kind == "choice" and self.input in ("dtmf", "both")

    @property
    def takes_speech(self) -> bool:
        return self.kind == "choice" and self.input in ("speech", "both")

    @property
    def answer_dimension(self) -> str:
        return self.dimension or ("reason" if self.kind == "record" else "other")


class Script(_Node):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    title: str = ""
    language: Language
    #: a speech answer below this confidence is asked again, by keys when the question has keys
    low_confidence: float = Field(default=0.6, ge=0, le=1)
    defaults: Defaults = Field(default_factory=Defaults)
    greeting: Prompt | None = None
    questions: tuple[Question, ...] = Field(min_length=1)
    closing: Prompt
    #: the SMS variant of the survey, a template like the prompts
    sms_text: str | None = None

    def index_of(self, question_id: str) -> int:
        for index, question in enumerate(self.questions):
            if question.id == question_id:
                return index
        raise KeyError(question_id)

    def prompts(self) -> Iterator[tuple[str, PromptText]]:
        """Every prompt of the script with its stable key (the path of its node)."""
        if self.greeting is not None:
            yield "greeting", self.greeting
        for name in ("no_input_prompt", "invalid_prompt", "low_confidence_prompt"):
            default = getattr(self.defaults, name)
            if default is not None:
                yield f"defaults.{name}", default
        for i, question in enumerate(self.questions):
            yield f"questions[{i}].prompt", question.prompt
            for name in ("no_input_prompt", "invalid_prompt", "low_confidence_prompt"):
                own = getattr(question, name)
                if own is not None:
                    yield f"questions[{i}].{name}", own
            for j, choice in enumerate(question.choices):
                if choice.say is not None:
                    yield f"questions[{i}].choices[{j}].say", choice.say
            if question.on_no_answer is not None and question.on_no_answer.say is not None:
                yield f"questions[{i}].on_no_answer.say", question.on_no_answer.say
        yield "closing", self.closing

    @property
    def variables_used(self) -> list[str]:
        """The template variables the app must supply for this script's prompts and SMS."""
        texts = [prompt.text_for(self.language) or "" for _, prompt in self.prompts()]
        names: list[str] = []
        for text in [*texts, self.sms_text or ""]:
            names.extend(name for name in template_variables(text) if name not in names)
        return names


# --- parsing -----------------------------------------------------------------------------


def validate_script_text(text: str) -> list[ScriptError]:
    """Every problem of a script's YAML text; empty when it is a valid script."""
    try:
        parse_script(text)
    except ScriptInvalid as invalid:
        return invalid.errors
    return []


def parse_script(text: str) -> Script:
    """The script `text` describes; raises ScriptInvalid listing every problem."""
    try:
        # one parse gives both the node tree (for lines) and the document built from it
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            # walked before construction so that an alias bomb is refused while still cheap
            lines, duplicates = _node_lines(root)
            document = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScriptInvalid([ScriptError("", f"YAML syntax: {problem}", line)]) from exc
    if duplicates:
        raise ScriptInvalid([ScriptError(p, "key given twice", lines.get(p)) for p in duplicates])
    if not isinstance(document, dict):
        raise ScriptInvalid([ScriptError("", "a script is a mapping (name:, language:, …)", 1)])
    return parse_script_mapping(document, lines)


def parse_script_mapping(
    document: Mapping[str, Any], lines: Mapping[str, int] | None = None
) -> Script:
    """The same as `parse_script` for a structure that arrived as JSON over the API."""
    lines = lines or {}
    try:
        script = Script.model_validate(document)
    except ValidationError as exc:
        errors = [_from_pydantic(error, lines) for error in exc.errors()]
        raise ScriptInvalid(errors) from exc
    problems = [
        ScriptError(path, message, _line_of(path, lines)) for path, message in _check(script)
    ]
    if problems:
        # in file order, as an editor would list them
        raise ScriptInvalid(sorted(problems, key=lambda error: error.line or 0))
    return script


def load_script(path: str | Path) -> Script:
    return parse_script(Path(path).read_text(encoding="utf-8"))


def builtin_scripts_dir() -> Path:
    """The repository's `config/scripts` (the built-in scripts)."""
    return Path(__file__).resolve().parents[2] / "config" / "scripts"


def builtin_script(name: str) -> Script:
    """A built-in script by name, e.g. `builtin_script("survey-110.zh-CN")`."""
    path = builtin_scripts_dir() / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in builtin_scripts_dir().glob("*.yaml"))
        raise KeyError(f"no built-in script {name!r}; there are {known}")
    return load_script(path)


def content_hash(text: str) -> str:
    """The identity of a published script version: sha256 of its exact text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_sms(script: Script, variables: Mapping[str, str]) -> str:
    """The script's SMS text with the incident's variables filled in."""
    if not script.sms_text:
        raise ValueError(f"script {script.name!r} has no sms_text")
    return render_template(script.sms_text, variables)


# --- error paths and lines -------------------------------------------------------------


def _format_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _from_pydantic(error: Mapping[str, Any], lines: Mapping[str, int]) -> ScriptError:
    path = _format_path(tuple(error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "missing":
        message = "missing"
    elif isinstance(error.get("input"), bool) and error["type"] == "string_type":
        message = _YAML_BOOLEAN
    elif "input" in error and error["type"] != "value_error":
        message = f"{message} (got {repr(error['input'])[:60]})"
    return ScriptError(path, message, _line_of(path, lines))


def _line_of(path: str, lines: Mapping[str, int]) -> int | None:
    # a missing field has no line of its own: point at the node that should hold it
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("")


def _node_lines(root: yaml.Node | None) -> tuple[dict[str, int], list[str]]:
    """The line of every node path, and the paths of keys given twice.

    Refuses documents with more than MAX_NODES nodes (an alias counts each time it is
    used) or nested deeper than MAX_DEPTH: a script is small, and "billion laughs"
    aliases would otherwise cost exponential time here and in validation.
    """
    lines: dict[str, int] = {}
    duplicates: list[str] = []
    visits = 0

    def walk(node: yaml.Node, path: str, depth: int = 0) -> None:
        nonlocal visits
        visits += 1
        if visits > MAX_NODES or depth > MAX_DEPTH:
            line = node.start_mark.line + 1
            raise ScriptInvalid(
                [ScriptError("", f"too large: over {MAX_NODES} nodes or {MAX_DEPTH} levels", line)]
            )
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                if key in seen:
                    duplicates.append(child)
                seen.add(key)
                lines.setdefault(child, key_node.start_mark.line + 1)
                walk(value_node, child, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]", depth + 1)

    if root is not None:
        walk(root, "")
    return lines, duplicates


# --- the checks the model cannot express ------------------------------------------------


def _check(script: Script) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    ids: dict[str, int] = {}
    for i, question in enumerate(script.questions):
        if question.id in (CLOSING, HANGUP):
            problems.append(
                (f"questions[{i}].id", f"'{question.id}' is reserved for ending the call")
            )
        elif question.id in ids:
            problems.append(
                (
                    f"questions[{i}].id",
                    f"'{question.id}' is already used by questions[{ids[question.id]}]",
                )
            )
        else:
            ids[question.id] = i
    for i, question in enumerate(script.questions):
        problems.extend(_check_question(script, i, question, ids))
    problems.extend(_check_prompts(script))
    if not problems:
        # the flow can only be judged once every target names a question
        problems.extend(_check_flow(script))
    return problems


def _check_question(
    script: Script, i: int, question: Question, ids: Mapping[str, int]
) -> list[tuple[str, str]]:
    at = f"questions[{i}]"
    problems: list[tuple[str, str]] = []
    if question.kind != "choice":
        if question.choices:
            problems.append((f"{at}.choices", f"a '{question.kind}' question has no choices"))
        if question.kind == "say" and question.on_no_answer is not None:
            problems.append((f"{at}.on_no_answer", "a 'say' question waits for no answer"))
    else:
        if question.dimension is None:
            problems.append((f"{at}.dimension", "missing: say what the question measures"))
        if not question.choices:
            problems.append((f"{at}.choices", "a choice question needs at least one choice"))
        problems.extend(_check_choices(question, at))
    needed = {
        "choice": ["no_input_prompt", "invalid_prompt"],
        "record": ["no_input_prompt"],
        "say": [],
    }
    needed_names = needed[question.kind] + (
        ["low_confidence_prompt"] if question.takes_speech else []
    )
    for name in needed_names:
        if getattr(question, name) is None and getattr(script.defaults, name) is None:
            problems.append((f"{at}.{name}", "missing (set it here or under defaults)"))
    routes: list[tuple[str, Route]] = [
        (f"{at}.choices[{j}]", c) for j, c in enumerate(question.choices)
    ]
    if question.on_no_answer is not None:
        routes.append((f"{at}.on_no_answer", question.on_no_answer))
    targets = [(f"{at}.next", question.next)]
    for path, route in routes:
        targets.append((f"{path}.next", route.next))
        if route.transfer is not None and route.next is not None:
            problems.append((f"{path}.next", "a transferred call goes nowhere next: drop one"))
    for path, target in targets:
        if target is not None and target not in ids and target not in (CLOSING, HANGUP):
            problems.append(
                (path, f"no question '{target}' (name a question id, 'closing' or 'hangup')")
            )
    return problems


def _check_choices(question: Question, at: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    keys: dict[str, int] = {}
    phrases: dict[str, int] = {}
    for j, choice in enumerate(question.choices):
        here = f"{at}.choices[{j}]"
        if choice.digit is not None:
            if len(choice.digit) != 1 or choice.digit not in DTMF_KEYS:
                problems.append((f"{here}.digit", f"'{choice.digit}' is not one key"))
            elif choice.digit in keys:
                problems.append(
                    (
                        f"{here}.digit",
                        f"'{choice.digit}' is already used by choices[{keys[choice.digit]}]",
                    )
                )
            else:
                keys[choice.digit] = j
            if not question.takes_digits:
                problems.append((f"{here}.digit", f"input '{question.input}' takes no keys"))
        elif question.takes_digits:
            problems.append(
                (f"{here}.digit", f"missing: input '{question.input}' needs a key for every choice")
            )
        for phrase in choice.phrases:
            normal = normalize_speech(phrase)
            if not normal:
                problems.append((f"{here}.phrases", "an empty phrase matches nothing"))
            elif normal in phrases and phrases[normal] != j:
                problems.append(
                    (
                        f"{here}.phrases",
                        f"'{phrase}' is already a phrase of choices[{phrases[normal]}]",
                    )
                )
            else:
                phrases[normal] = j
        if question.input == "speech" and not choice.phrases:
            problems.append(
                (f"{here}.phrases", "missing: input 'speech' needs phrases for every choice")
            )
        if choice.phrases and not question.takes_speech:
            problems.append((f"{here}.phrases", f"input '{question.input}' takes no speech"))
    if question.input == "both" and not phrases:
        problems.append((f"{at}.input", "'both' but no choice has phrases"))
    return problems


def _check_prompts(script: Script) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key, prompt in script.prompts():
        text = prompt.text_for(script.language)
        if not text or not text.strip():
            problems.append((key, f"no text for {script.language}"))
            continue
        for language, translated in [(None, prompt.text), *prompt.translations.items()]:
            try:
                template_variables(translated or "")
            except TemplateError as exc:
                where = f"{key}.{language}" if language else key
                problems.append((where, str(exc)))
    if script.sms_text is not None:
        try:
            template_variables(script.sms_text)
        except TemplateError as exc:
            problems.append(("sms_text", str(exc)))
    return problems


def next_step(script: Script, target: str | None, index: int) -> int | str:
    """Where a route with `target` leads from question `index`: a question index, or
    CLOSING / HANGUP. No target means the following question (the closing after the last).

    The interpreter and the validator both go through here, so they never disagree about
    where a call goes.
    """
    if target is None:
        return index + 1 if index + 1 < len(script.questions) else CLOSING
    if target in (CLOSING, HANGUP):
        return target
    return script.index_of(target)


def flow_targets(script: Script, index: int) -> set[int | None]:
    """The questions question `index` can lead to (None: the call ends)."""
    question = script.questions[index]
    follow = question.next
    routes: list[Route] = list(question.choices)
    if question.kind != "say":
        routes.append(question.on_no_answer or Route())
    if question.kind != "choice" or question.only_if:
        routes.append(Route())
    targets: set[int | None] = set()
    for route in routes:
        step = next_step(script, route.next or follow, index)
        targets.add(None if route.transfer or isinstance(step, str) else step)
    return targets


def _check_flow(script: Script) -> list[tuple[str, str]]:
    count = len(script.questions)
    edges = {i: flow_targets(script, i) for i in range(count)}
    successors = {i: {t for t in edges[i] if t is not None} for i in range(count)}
    ends = {i for i in range(count) if None in edges[i]}

    reachable = {0}
    frontier = [0]
    while frontier:
        for nxt in successors[frontier.pop()] - reachable:
            reachable.add(nxt)
            frontier.append(nxt)
    problems = [
        (f"questions[{i}]", f"unreachable: nothing leads to '{script.questions[i].id}'")
        for i in range(count)
        if i not in reachable
    ]

    can_end = set(ends)
    changed = True
    while changed:
        changed = False
        for i in range(count):
            if i not in can_end and successors[i] & can_end:
                can_end.add(i)
                changed = True
    reported: set[frozenset[int]] = set()
    for i in sorted(reachable - can_end):
        cycle = _cycle_from(i, successors)
        if frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        names = " → ".join(script.questions[n].id for n in [*cycle, cycle[0]])
        problems.append((f"questions[{cycle[-1]}]", f"loop with no exit: {names}"))
    return problems


def _cycle_from(start: int, successors: Mapping[int, set[int]]) -> list[int]:
    # every successor of a node that cannot end also cannot end, so this walk stays in
    # the trapped part of the graph until it meets itself
    path: list[int] = []
    node = start
    while node not in path:
        path.append(node)
        node = min(successors[node])
    return path[path.index(node) :]


def normalize_speech(text: str) -> str:
    """Lower case, no spaces or punctuation: Vosk writes `不 满意`, a script writes `不满意`."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())
