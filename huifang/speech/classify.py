"""Satisfaction and complaint classifiers for survey answers (SMS text, typed or spoken).

`classify` maps an answer in zh-CN or en-US to a `Satisfaction` with a confidence and the
evidence it rests on; `tag_complaint` names what a complaint is about. Both are pure: the
lexicons in `huifang/speech/lexicons/*.tsv` are read once at import, calls do no I/O.

How an answer is read (the rules this module keeps):
1. Normalise: NFKC (full-width digits and letters become ASCII), lower case, common
   Traditional characters to Simplified (`滿意` is `满意`), English contractions spelled out (`didn't` → `did not`). Chinese characters are matched one by
   one, so Vosk's spaces (`不 满意`) make no difference; ASCII words stay whole (`td`).
2. An answer holding Chinese is read with the Chinese lexicon, one of only Latin letters with
   the English one, whatever language was asked; digits and symbols use the one asked.
3. A whole-message entry wins outright (`好的` and `ok` are acknowledgements, not ratings;
   `STOP` alone opts out). A leading 1/2/3 is the SMS menu choice, unless a unit follows
   (`2个小时才来` is a complaint about two hours, not option 2); an answer naming several
   menu digits chose none of them.
4. Otherwise the answer is scanned for the longest lexicon phrase at each position, and
   the modifiers right before a phrase (degree words may stand between) act on it:
   a negator flips it (`不是很满意` unsatisfied, `不差` only basically satisfied), an
   absence flips it fully (`没什么不满意的` satisfied, `没有结果` a complaint), a mild
   word (`有点`, `a bit`) turns a complaint into a remark and praise into faint praise, a wish (`再快一点`) turns praise
   into a request, a partial negator (`not entirely happy`) leaves a lukewarm rating,
   a topic (`态度`) makes a judgement a reason with a complaint category. Judgements
   inside a genuine question (`有进展了吗`) are dropped; rhetorical ones (`为什么没人管`) stay.
5. Ratings (`满意`, `一般`, `terrible`) decide over reasons (`来得慢`, `rude`), except that a
   satisfied rating with a complaint beside it is only basically satisfied. Reasons of both
   signs make basically satisfied, unless the complaints outnumber the praise; thanks and
   bare yes/no count only when nothing else does. A request to stop messages opts out,
   unless the answer also complains (an unsatisfied answer must always reach a person); a
   soft one (`不用回访了`) only when the answer says nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from huifang.domain.enums import ComplaintCategory, Satisfaction

__all__ = [
    "Classification",
    "ComplaintTag",
    "RuleReading",
    "classify",
    "read_rules",
    "tag_complaint",
]


@dataclass(frozen=True, slots=True)
class Classification:
    label: Satisfaction
    confidence: float
    evidence: str


@dataclass(frozen=True, slots=True)
class RuleReading:
    """What the rules make of an answer, with the signals a learned reader weighs.

    `decided_by` says which rule gave the label: `menu` (a reply digit), `whole` (a
    whole-message entry such as `好的` or `STOP`), `phrases` (the lexicon scan), `empty`
    (nothing readable). `roles` are the roles of the phrases found, after negators and other
    modifiers acted on them (`满意` under `不` is `unsatisfied`); `mild` marks the softened ones.
    """

    classification: Classification
    decided_by: str
    language: str
    normalized: str
    roles: tuple[str, ...]
    mild: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class ComplaintTag:
    category: ComplaintCategory
    phrase: str


class Role(StrEnum):
    """What a lexicon phrase does in an answer."""

    satisfied = "satisfied"  # ratings: the citizen's verdict
    basic = "basic"
    unsatisfied = "unsatisfied"
    good = "+reason"  # reasons: what went well or badly
    bad = "-reason"
    so_so = "~reason"  # a suggestion or a lukewarm remark
    thanks = "+weak"  # count only when nothing else does
    refusal = "-weak"
    expected = "expected"  # what a citizen expects (a result, a call back): counts when absent
    negator = "negator"  # `不`, `not`: `不差`, `不慢` are only basically satisfied
    retract = "retract"  # `谈不上`, `才怪`: a negator that may also end the clause it negates
    absence = "absence"  # `没有`, `no`, `一点也不`: `没有不满意`, `没有推诿` are satisfied
    partial = "partial"  # `不完全`, `not entirely`: `not entirely happy` is basically satisfied
    degree = "degree"  # may stand between a modifier and what it modifies
    mild = "mild"
    wish = "wish"  # `再`, `更`: `再快一点` asks for better, it does not praise
    topic = "topic"  # `态度`, `速度`: names what the next judgement is about
    neutral = "neutral"  # swallows text that would otherwise be misread (`好的`, `别再发生`)
    opt_out = "optout"
    soft_opt_out = "softoptout"  # `不用回访了`: an opt-out only when nothing else is said


_NEGATED = {
    Role.satisfied: Role.unsatisfied,
    Role.unsatisfied: Role.basic,
    Role.good: Role.bad,
    Role.bad: Role.so_so,
    Role.expected: Role.bad,
    Role.thanks: Role.refusal,
}
_ABSENT = _NEGATED | {Role.unsatisfied: Role.satisfied, Role.bad: Role.good}
_WISHED = {Role.satisfied: Role.so_so, Role.good: Role.so_so}
_PARTLY = {
    Role.satisfied: Role.basic,
    Role.unsatisfied: Role.basic,
    Role.good: Role.so_so,
    Role.bad: Role.so_so,
    Role.expected: Role.so_so,
}
_ASPECT = {Role.satisfied: Role.good, Role.basic: Role.so_so, Role.unsatisfied: Role.bad}
_SOFTENED = {Role.satisfied: Role.basic, Role.good: Role.so_so}
_MODIFIERS = frozenset(
    {Role.negator, Role.retract, Role.absence, Role.partial, Role.degree, Role.mild}
    | {Role.wish, Role.topic}
)
_RATINGS = frozenset({Role.satisfied, Role.basic, Role.unsatisfied})
_REASONS = frozenset({Role.good, Role.so_so, Role.bad})
_WEAK = frozenset({Role.thanks, Role.refusal})


@dataclass(frozen=True, slots=True)
class _Entry:
    role: Role
    category: ComplaintCategory | None


@dataclass(frozen=True, slots=True)
class _Hit:
    role: Role
    category: ComplaintCategory | None
    phrase: str
    start: int
    end: int
    mild: bool = False


@dataclass(frozen=True, slots=True)
class _Lexicon:
    joiner: str
    phrases: dict[str, _Entry]
    #: every phrase and every start of one (in whole units): a scan extends a candidate only
    #: while it is one of these
    prefixes: frozenset[str]
    whole: dict[str, Satisfaction]
    patterns: tuple[tuple[re.Pattern[str], _Entry], ...]
    #: the patterns worth trying on an answer holding a character or two neighbouring ones:
    #: each pattern is filed under such keys one of which every match holds (`_needs`), or
    #: under "" (always tried)
    pattern_index: dict[str, tuple[int, ...]]
    units: re.Pattern[str]
    reply_digit: re.Pattern[str]
    menu_digits: re.Pattern[str]


_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[a-z]")
_MEANINGFUL = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]")
_CHINESE_NUMBER_REPLY = {"一": "1", "二": "2", "三": "3"}
#: a menu choice said or typed as a word (`我 选 三`, `按二`, `壹`, `option three please`):
#: the whole answer is the word, repeated or not, with a verb before and a particle after
_NUMBER_WORDS = {
    "一": "1", "壹": "1", "二": "2", "贰": "2", "三": "3", "叁": "3",
    "one": "1", "two": "2", "three": "3", "#1": "1", "#2": "2", "#3": "3",
    "1": "1", "2": "2", "3": "3",
}  # fmt: skip
_SPOKEN_CHOICE = re.compile(
    r"^(?:(?:我|那|就)\s*)*(?:(?:选\s*择?|按|回\s*复?|要|打)\s*)?0?(一|壹|二|贰|三|叁|[1-3])(?:\s*号)?"
    r"(?:\s*(?:选\s*择?|按)?\s*\1(?:\s*号)?)*\s*(?:吧|呢|啊|呀|了)?$"
    r"|^(?:i ' ?ll go with|i choose|i pick|i say|press|option|number|choice|reply|go with)?\s*"
    r"(one|two|three|# ?[1-3])(?:\s+\2)*"
    r"(?:\s+(?:please|pls|i guess|i suppose|definitely|thanks|thank you))?$"
)
#: no spoken menu choice is longer (`i ' ll go with three please`)
_LONGEST_SPOKEN_CHOICE = 40
_DIGIT_LABELS = {
    "1": Satisfaction.satisfied,
    "2": Satisfaction.basically_satisfied,
    "3": Satisfaction.unsatisfied,
}


def _load(language: str, joiner: str, units: str, digit_units: str) -> _Lexicon:
    text = resources.files("huifang.speech").joinpath(f"lexicons/{language}.tsv").read_text("utf-8")
    phrases: dict[str, _Entry] = {}
    whole: dict[str, Satisfaction] = {}
    patterns: list[tuple[re.Pattern[str], _Entry]] = []
    pattern_index: dict[str, set[int]] = {}
    unit_pattern = re.compile(units)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise ValueError(
                f"lexicons/{language}.tsv:{number}: expected 2 or 3 tab-separated fields"
            )
        phrase, role = fields[0], fields[1]
        category = ComplaintCategory(fields[2]) if len(fields) == 3 and fields[2] else None
        if role.startswith("="):
            found = [u for u in unit_pattern.findall(_normalize(phrase)) if _MEANINGFUL.match(u)]
            whole[_key(found, joiner)] = Satisfaction(role[1:])
        elif phrase.startswith("re:"):
            compiled = re.compile(phrase[3:])
            for character in _needs(compiled) or {""}:
                pattern_index.setdefault(character, set()).add(len(patterns))
            patterns.append((compiled, _Entry(Role(role), category)))
        else:
            key = _key(unit_pattern.findall(_normalize(phrase)), joiner)
            phrases[key] = _Entry(Role(role), category)
    prefixes: set[str] = set()
    for key in phrases:
        found = unit_pattern.findall(key)
        prefixes.update(_key(found[:size], joiner) for size in range(1, len(found) + 1))
    reply = re.compile(
        rf"^(?:回复|回|选择?|我选择?|答|reply|option|choice)?[\s:：]*([1-3])\1*(?![0-9]|\.[0-9]|\s*(?:{digit_units}))"
    )
    menu = re.compile(rf"(?<![0-9])[1-3](?![0-9]|\.[0-9]|\s*(?:{digit_units}))")
    index = {character: tuple(sorted(found)) for character, found in pattern_index.items()}
    return _Lexicon(
        joiner,
        phrases,
        frozenset(prefixes),
        whole,
        tuple(patterns),
        index,
        unit_pattern,
        reply,
        menu,
    )


def _needs(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Keys (a character, or two neighbouring ones) one of which every match of `pattern`
    holds, to skip it on answers that hold none (most patterns, most answers); None when the
    pattern promises none."""
    from re import _constants as c  # type: ignore[attr-defined]  # the parser re itself uses
    from re import _parser  # type: ignore[attr-defined]

    def sequence(items: Any) -> frozenset[str] | None:
        best: frozenset[str] | None = None
        run = ""
        for op, arg in [*items, (None, None)]:
            if op is c.LITERAL:
                run += chr(arg)
                continue
            if run and (best is None or len(min(best, key=len)) < len(run)):
                best = frozenset({run})
            run = ""
            found = node(op, arg)
            if found is not None and (best is None or min(map(len, found)) > min(map(len, best))):
                best = found
        return best

    def node(op: Any, arg: Any) -> frozenset[str] | None:
        if op is c.SUBPATTERN:
            return sequence(arg[-1])
        if op is c.BRANCH:
            alternatives = [sequence(branch) for branch in arg[1]]
            if any(a is None for a in alternatives):
                return None
            return frozenset().union(*alternatives)  # type: ignore[arg-type]
        if op is c.IN and all(o is c.LITERAL for o, _ in arg):
            return frozenset(chr(a) for _, a in arg)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and arg[0] >= 1:
            return sequence(arg[2])
        return None

    found = sequence(_parser.parse(pattern.pattern))
    rarest = frozenset(_rarest(need) for need in found if need.strip()) if found else None
    return rarest or None


#: Latin letters and signs, most frequent first: of a substring a pattern needs, its least
#: frequent pair of characters files it (`went on ` under `we`), any Chinese character
#: counting as rare
_FREQUENT = " etaoinshrdlcumwfgypbvk'-,.jxqz0123456789"


def _rarest(need: str) -> str:
    """The need's two neighbouring characters least likely in an answer (or its only one)."""
    stripped = need.strip()
    if len(stripped) < 2:
        return stripped
    rank = lambda character: _FREQUENT.find(character) % 1000  # noqa: E731
    pairs = [stripped[i : i + 2] for i in range(len(stripped) - 1)]
    return max(pairs, key=lambda pair: rank(pair[0]) + rank(pair[1]))


def _key(units: list[str], joiner: str) -> str:
    return joiner.join(units)


def _simplified_table() -> dict[int, str]:
    text = resources.files("huifang.speech").joinpath("lexicons/zh-Hant.tsv").read_text("utf-8")
    pairs = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {ord(traditional): simplified for traditional, simplified in pairs}


_SIMPLIFIED = _simplified_table() | {ord("\u2019"): "'"}


#: emoji decorations that change nothing a reader sees in them: variation selectors, joiners,
#: skin tones, the gender signs of joined sequences
_EMOJI_DECORATION = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff\u2640\u2642]")


def _normalize(text: str) -> str:
    normalized = unicodedata.normalize("NFKC", text).lower().translate(_SIMPLIFIED)
    normalized = _EMOJI_DECORATION.sub("", normalized)
    # the contractions need one of these (most answers have none: spare the four patterns)
    if "'" in normalized or "cant" in normalized or "cannot" in normalized or "wont" in normalized:
        for pattern, replacement in _CONTRACTIONS:
            normalized = pattern.sub(replacement, normalized)
    return normalized.strip()


#: emoji that say something (`👍` satisfied, `😐` so-so, `👎` a complaint): in both lexicons
_EMOJI = frozenset("👍👏💯❤♥☺😊🥰😁😀😃😄🙏🌹🎉✌👌💪🤝😍🫡👎💩😡🤬😤😠🙄😒😾😞😔😢😭💢🖕😐😑🤷")

_LEXICONS = {
    "zh-CN": _load(
        "zh-CN",
        joiner="",
        units=r"[a-z0-9]+|[^\sa-z0-9]",
        digit_units=r"个|小时|分|钟|天|次|点|号|位|人|辆|年|月|日|周|星期|遍|趟|多|十|百|千|万|元|块|星|颗|/|h|min",
    ),
    "en-US": _load(
        "en-US",
        joiner=" ",
        units=r"[a-z0-9]+|[^\sa-z0-9]",
        digit_units=r"hours?|hrs?|minutes?|mins?|days?|times?|weeks?|people|officers?|stars?|out of|/|am|pm|h\b|x\b",
    ),
}


def _lexicon_for(normalized: str, language: str) -> _Lexicon:
    if _CJK.search(normalized):
        return _LEXICONS["zh-CN"]
    if _LATIN.search(normalized):
        return _LEXICONS["en-US"]
    if language not in _LEXICONS:
        raise ValueError(f"unsupported language {language!r}; use one of {sorted(_LEXICONS)}")
    return _LEXICONS[language]


def _scan(units: list[str], lexicon: _Lexicon) -> list[_Hit]:
    """Longest lexicon phrase at each position; negators and mild words applied."""
    joined = _key(units, lexicon.joiner)
    hits: list[_Hit] = []
    taken = [False] * len(units)
    entry: _Entry | None
    if lexicon.patterns:
        starts = []
        offset = 0
        for unit in units:
            starts.append(offset)
            offset += len(unit) + len(lexicon.joiner)
        index = lexicon.pattern_index
        tried: set[int] = set(index.get("", ()))
        for key in {*joined, *(joined[i : i + 2] for i in range(len(joined) - 1))}:
            filed = index.get(key)
            if filed is not None:
                tried.update(filed)
        for number in sorted(tried):
            pattern, entry = lexicon.patterns[number]
            for match in pattern.finditer(joined):
                first = bisect_right(starts, match.start()) - 1
                last = bisect_right(starts, max(match.end() - 1, match.start())) - 1
                if any(taken[first : last + 1]):
                    continue
                taken[first : last + 1] = [True] * (last + 1 - first)
                hits.append(_Hit(entry.role, entry.category, match.group(), first, last + 1))
    position = 0
    count = len(units)
    prefixes, phrases, joiner = lexicon.prefixes, lexicon.phrases, lexicon.joiner
    while position < count:
        # the longest phrase starting here, grown unit by unit while it starts some phrase
        longest: tuple[_Entry, str, int] | None = None
        piece, end = "", position
        while end < count and not taken[end]:
            piece = piece + joiner + units[end] if end > position else units[end]
            end += 1
            if piece not in prefixes:
                break
            entry = phrases.get(piece)
            if entry is not None:
                longest = (entry, piece, end)
        if longest is None:
            position += 1
            continue
        matched, phrase, stop = longest
        hits.append(_Hit(matched.role, matched.category, phrase, position, stop))
        position = stop
    hits.sort(key=lambda hit: hit.start)
    return _drop_questions(_apply_modifiers(hits, units), units)


_CLAUSE_END = frozenset(",，。.!！?？;；、")
#: English words that open a real question (`did you find my bike?`)
_QUESTION_WORDS = frozenset(
    {"did", "do", "does", "is", "are", "can", "could", "will", "when", "what", "where", "has"}
    | {"have", "any"}
)
#: who a spoken English question (no question mark from Vosk) asks about: `did they catch him`
_SUBJECTS = frozenset(
    {"they", "you", "he", "she", "anyone", "anybody", "someone", "somebody", "the", "my", "it"}
)
#: units without which no clause can be a question (checked first: most answers have none)
_QUESTION_HINTS = frozenset({"吗", "么", "?", "？", "请", "时", "没", "有"} | _QUESTION_WORDS)
_RHETORICAL = (
    "为什么",
    "凭什么",
    "怎么",
    "难道",
    "这叫",
    "有用吗",
    "觉得这样",
    "认为这样",
    "why",
    "how come",
)


def _drop_questions(hits: list[_Hit], units: list[str]) -> list[_Hit]:
    """Judgements inside a question (`我的案子有进展了吗`) are asked about, not given.

    Rhetorical questions (`为什么没人管?`) keep theirs, and so do lexicon phrases that end
    in the question particle themselves (`能满意吗`).
    """
    if _QUESTION_HINTS.isdisjoint(units):
        return hits
    questions: list[tuple[int, int]] = []
    start = 0
    for index in range(len(units) + 1):
        if index < len(units) and units[index] not in _CLAUSE_END:
            continue
        clause = units[start:index]
        text = "".join(clause)
        asks = bool(clause) and (
            clause[-1] in ("吗", "么")
            or text.endswith(("了没有", "了没"))
            or (index < len(units) and units[index] in "?？" and clause[0] in _QUESTION_WORDS)
            or (clause[0] in _QUESTION_WORDS and clause[1:2] and clause[1] in _SUBJECTS)
            or any(word in text for word in ("请问", "什么时候"))
        )
        if asks and not any(marker in " ".join(clause) or marker in text for marker in _RHETORICAL):
            questions.append((start, index))
        start = index + 1
    if not questions:
        return hits
    return [
        hit
        for hit in hits
        if hit.phrase[-1:] in ("吗", "么")
        or not any(first <= hit.start and hit.end <= last for first, last in questions)
    ]


def _apply_modifiers(hits: list[_Hit], units: list[str]) -> list[_Hit]:
    """Apply the modifiers standing right before each phrase (degree words may intervene).

    Negators flip, mild words soften complaints, wishes turn praise into a request, topics
    lend their complaint category. A mild word standing alone as a clause (`somewhat,`)
    is itself a lukewarm rating; an expected thing not said to be missing
    means nothing.
    """
    result: list[_Hit] = []
    used: set[int] = set()
    role: Role  # not the narrowed literal type of the first `hit.role` it takes
    for index, hit in enumerate(hits):
        if hit.role in _MODIFIERS or hit.role is Role.neutral:
            continue
        role, category, mild, start = hit.role, hit.category, False, hit.start
        for position in range(index - 1, -1, -1):
            before = hits[position]
            if before.end != start:
                break  # something unmatched stands between
            if before.role not in _MODIFIERS:
                break
            used.add(position)
            start = before.start
            if before.role is Role.mild:
                mild = True
                role = _SOFTENED.get(role, role)
            elif before.role is Role.wish:
                role = _WISHED.get(role, role)
            elif before.role is Role.topic:
                category = category or before.category
            elif before.role in (Role.negator, Role.retract):
                role = _NEGATED.get(role, role)
                break
            elif before.role is Role.absence:
                role = _ABSENT.get(role, role)
                break
            elif before.role is Role.partial:
                role = _PARTLY.get(role, role)
                break
        if category is not None and hit.category is None:
            # `态度一般` judges one aspect: a reason for the verdict, not the verdict itself
            role = _ASPECT.get(role, role)
        if role is not Role.expected:
            result.append(_Hit(role, category, hit.phrase, start, hit.end, mild))
    by_end = {hit.end: index for index, hit in enumerate(result)}
    for position, hit in enumerate(hits):
        if position in used:
            continue
        ends_clause = hit.end >= len(units) or not _MEANINGFUL.match(units[hit.end])
        starts_clause = hit.start == 0 or not _MEANINGFUL.match(units[hit.start - 1])
        if hit.role is Role.mild and starts_clause and ends_clause:
            result.append(_Hit(Role.basic, None, hit.phrase, hit.start, hit.end))
        elif hit.role is Role.mild and hit.start in by_end:
            # a softener after a judgement (`慢了点`, `satisfied-ish`) makes a complaint a
            # remark and praise faint
            softened = result[by_end[hit.start]]
            faint = softened.role if softened.role is Role.bad else _SOFTENED.get(softened.role)
            if faint is not None:
                result[by_end[hit.start]] = _Hit(
                    faint, softened.category, softened.phrase, softened.start, hit.end, True
                )
        elif hit.role is Role.retract and ends_clause:
            # a retraction ending the clause takes back what came just before it:
            # `很满意才怪`, `满意也谈不上`
            edge = hit.start
            for before in reversed(hits[:position]):
                if before.end != edge or before.role is not Role.degree:
                    break
                edge = before.start
            judged = by_end.get(edge)
            if judged is not None:
                taken_back = result[judged]
                role = _NEGATED.get(taken_back.role, taken_back.role)
                result[judged] = _Hit(
                    role, taken_back.category, taken_back.phrase, taken_back.start, hit.end
                )
    result.sort(key=lambda hit: hit.start)
    return result


#: evidence names at most this many spans, so a long transcript does not become its own evidence
_EVIDENCE_SPANS = 3


def _evidence(units: list[str], hits: list[_Hit], lexicon: _Lexicon) -> str:
    shown = hits[:_EVIDENCE_SPANS]
    return " … ".join(_key(units[h.start : h.end], lexicon.joiner) for h in shown)


def _menu_choice(normalized: str, lexicon: _Lexicon) -> Classification | None:
    """The SMS menu digit the answer opens with, if it is one."""
    if len(set(lexicon.menu_digits.findall(normalized))) > 1:
        # the menu itself echoed back (`1满意2基本满意3不满意`): no choice was made
        return Classification(Satisfaction.unclear, 0.6, "")
    stripped = normalized.strip(" \t\r\n.。!！,，、~～:：-()（）[]【】「」<>《》")
    digit = _CHINESE_NUMBER_REPLY.get(stripped)
    if digit is None:
        match = lexicon.reply_digit.match(stripped)
        digit = match.group(1) if match else None
    if digit is None and len(stripped) <= _LONGEST_SPOKEN_CHOICE:
        spoken = _SPOKEN_CHOICE.match(" ".join(lexicon.units.findall(stripped)))
        word = spoken and (spoken.group(1) or spoken.group(2))
        digit = _NUMBER_WORDS.get(word.replace(" ", "")) if word else None
    return Classification(_DIGIT_LABELS[digit], 0.98, digit) if digit else None


@dataclass(frozen=True, slots=True)
class _Analysis:
    classification: Classification
    decided_by: str
    normalized: str
    hits: list[_Hit]
    units: list[str]
    lexicon: _Lexicon


def _analyse(text: str, language: str) -> _Analysis:
    normalized = _normalize(text)
    lexicon = _lexicon_for(normalized, language)
    units = lexicon.units.findall(normalized)
    meaningful = [u for u in units if _MEANINGFUL.match(u) or u in _EMOJI]
    if not meaningful:
        unclear = Classification(Satisfaction.unclear, 0.9, "")
        return _Analysis(unclear, "empty", normalized, [], units, lexicon)
    whole_key = _key(meaningful, lexicon.joiner)
    if whole_key in lexicon.whole:
        whole = Classification(lexicon.whole[whole_key], 0.9, whole_key)
        return _Analysis(whole, "whole", normalized, [], units, lexicon)
    hits = _scan(units, lexicon)
    choice = _menu_choice(normalized, lexicon)
    if choice is not None and choice.evidence:
        return _Analysis(choice, "menu", normalized, hits, units, lexicon)
    decided = choice or _decide(hits, units, lexicon)
    return _Analysis(decided, "phrases", normalized, hits, units, lexicon)


#: a complaint phrase holding one of these is a remark (`来得有点晚`, `a bit slow`)
_HEDGES = (
    "有点",
    "稍",
    "略",
    "了点",
    "了一点",
    "没完全",
    "不完全",
    "a bit",
    "a little",
    "slightly",
    "somewhat",
    "not completely",
    "not fully",
)


def _hedged(hit: _Hit, beside_praise: bool) -> bool:
    """A softened complaint (`有点慢`), or one worded with a hedge beside praise or a rating."""
    return hit.mild or (beside_praise and any(hedge in hit.phrase for hedge in _HEDGES))


def _decide(hits: list[_Hit], units: list[str], lexicon: _Lexicon) -> Classification:
    ratings = [h for h in hits if h.role in _RATINGS]
    reasons = [h for h in hits if h.role in _REASONS]
    weak = [h for h in hits if h.role in _WEAK]
    opt_out = [h for h in hits if h.role is Role.opt_out]
    soft_opt_out = [h for h in hits if h.role is Role.soft_opt_out]
    praise = [h for h in reasons if h.role is Role.good]
    # a complaint worded with a hedge (`来得有点晚`) is a remark beside praise or a rating;
    # alone it is a complaint still (safety first)
    softens = bool(praise or ratings)
    complaints = [h for h in reasons if h.role is Role.bad and not _hedged(h, softens)]
    remarks = [
        h for h in reasons if h.role is Role.so_so or (h.role is Role.bad and _hedged(h, softens))
    ]

    def verdict(label: Satisfaction, confidence: float, basis: list[_Hit]) -> Classification:
        return Classification(label, confidence, _evidence(units, basis, lexicon))

    unsatisfied_rating = bool(ratings) and ratings[-1].role is Role.unsatisfied
    if opt_out and not unsatisfied_rating and not complaints:
        return verdict(Satisfaction.opt_out, 0.95, opt_out)
    resolved = [h for h in praise if h.category is ComplaintCategory.handling]
    if (
        resolved
        and complaints
        and all(h.category is not ComplaintCategory.handling for h in complaints)
    ):
        # the case was resolved, late or rudely: a remark on an accepted outcome
        # (`Took a while but they sorted it`)
        remarks, complaints = [*remarks, *complaints], []
    if ratings:
        last = ratings[-1]
        if complaints and any(h.role is Role.unsatisfied for h in ratings):
            last = next(h for h in reversed(ratings) if h.role is Role.unsatisfied)
        if last.role is Role.unsatisfied:
            return verdict(Satisfaction.unsatisfied, 0.95, [last, *complaints])
        if complaints:
            # an unhedged grievance beside praise is the real verdict (`还凑合吧，就是事情一点
            # 没办成`), or sarcasm (`满意满意，车还在我家门口堵着呢`)
            return verdict(Satisfaction.unsatisfied, 0.75, [*complaints, last])
        if last.role is Role.basic:
            return verdict(Satisfaction.basically_satisfied, 0.9, [last])
        if remarks:
            return verdict(Satisfaction.basically_satisfied, 0.75, [last, *remarks])
        return verdict(Satisfaction.satisfied, 0.95, [last])
    if complaints:
        return verdict(Satisfaction.unsatisfied, 0.85 if not praise else 0.7, complaints)
    if remarks:
        return verdict(Satisfaction.basically_satisfied, 0.75, [*praise, *remarks])
    if praise:
        return verdict(Satisfaction.satisfied, 0.85, praise)
    if soft_opt_out:
        return verdict(Satisfaction.opt_out, 0.8, soft_opt_out)
    if weak:
        label = Satisfaction.satisfied if weak[-1].role is Role.thanks else Satisfaction.unsatisfied
        return verdict(label, 0.7, [weak[-1]])
    return Classification(Satisfaction.unclear, 0.6, "")


def classify(text: str, language: str = "zh-CN") -> Classification:
    """What a survey answer says about the citizen's satisfaction, and why."""
    return _analyse(text, language).classification


def read_rules(text: str, language: str = "zh-CN") -> RuleReading:
    """`classify`'s reading with the signals it rests on (for the learned reader)."""
    analysis = _analyse(text, language)
    lexicon_language = next(name for name, lex in _LEXICONS.items() if lex is analysis.lexicon)
    return RuleReading(
        analysis.classification,
        analysis.decided_by,
        lexicon_language,
        analysis.normalized,
        tuple(hit.role.value for hit in analysis.hits),
        tuple(hit.mild for hit in analysis.hits),
    )


def tag_complaint(text: str, language: str = "zh-CN") -> list[ComplaintTag]:
    """The complaint categories an answer raises, with the phrases that raised them.

    An answer that complains about nothing named gets one `other` tag with its evidence;
    one that does not complain at all gets none.
    """
    analysis = _analyse(text, language)
    result, hits, units, lexicon = (
        analysis.classification,
        analysis.hits,
        analysis.units,
        analysis.lexicon,
    )
    tags: list[ComplaintTag] = []
    for hit in hits:
        negative = hit.role in (Role.bad, Role.unsatisfied, Role.refusal, Role.so_so)
        if negative and hit.category is not None:
            tag = ComplaintTag(hit.category, _key(units[hit.start : hit.end], lexicon.joiner))
            if tag not in tags:
                tags.append(tag)
    if not tags and result.label is Satisfaction.unsatisfied:
        tags.append(ComplaintTag(ComplaintCategory.other, result.evidence))
    return tags
