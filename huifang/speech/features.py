"""What the learned reader sees of an answer: character n-grams, words, the rules' reading
and the markers of replies that say the opposite of their words.

One function, `answer_features`, serves training and reading alike, so the two can never
see an answer differently. It is pure and reads no file.

Rules kept here:
- the text is normalised as the rules normalise it (NFKC, lower case, Traditional to
  Simplified, English contractions spelled out), and Vosk's spaces between Chinese words are
  dropped: `不 满意` and `不满意` give the same features;
- Chinese is read as character 1–3-grams, English as character 2–4-grams inside words plus
  words and word pairs; both with the rules' label and phrase roles (`rule:unsatisfied`,
  `role:-reason`), and markers: quotes, laughter, question marks, ellipses, clause count,
  length (`mark:quote`, `mark:clauses=3+`);
- which model reads an answer follows the rules' choice of lexicon: an answer holding
  Chinese characters is Chinese, one of Latin letters only English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from huifang.speech.classify import RuleReading, read_rules

__all__ = ["AnswerFeatures", "answer_features", "grievance_cues"]

_SPACE_BETWEEN_CJK = re.compile(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
_CLAUSE = re.compile(r"[,，。.!！?？;；、…~～]+|\s-\s|\bbut\b|\bthough\b|但是?|可是|就是|不过|然而")
#: quotation marks; an apostrophe only when it is not inside a word (`it's` quotes nothing)
_QUOTE = re.compile("[\"“”「」『』‘’]|(?<![a-z])'|'(?![a-z])")
_QUESTION = frozenset("?？")
_LAUGHTER = ("呵呵", "哈哈", "嘿嘿", "lol", "haha", "hehe", "yeah right", "sure,")
_EYE_ROLL = frozenset("🙄😒😤😡😠🤬💢👎😑😂🤣🙂🙃😏😓😭😞😔")
_ELLIPSIS = ("…", "...", "。。")
#: letters the reader has a lexicon for; an answer with other letters only is unreadable
_KNOWN_LETTERS = re.compile(r"[a-z\u3400-\u9fff\uf900-\ufaff]")
_ANY_LETTER = re.compile(r"[^\W\d_]")
#: words that say the service failed or the problem is still there, whatever the reply opens
#: with: a reading other than unsatisfied beside one of them goes to a person
#: (`reader.doubt`). English is matched on the normalised text (contractions spelled out).
_EN_GRIEVANCE = re.compile(
    r"\b(?:still|again|yet|never|nobody|no ?one|anymore|keeps?|kept|ignored|ignoring|useless"
    r"|wait(?:ed|ing)?|hours?|hrs?|(?<!same )(?<!next )(?<!happy )days?|weeks?|months?|times"
    r"|back on|is back|nothing(?! (?:to complain|bad|wrong|negative))|(?<!nothing )wrong"
    r"|not that|done with|fed up|waste|untouched"
    r"|no(?! (?:problems?|complaints?|issues?|worries|trouble|hassle|fuss|faults?|more|thanks"
    r"|time|doubt)\b))\b"
)
#: asking not to be contacted again is no grievance ("don't text me again")
_EN_NOT_AGAIN = re.compile(
    r"\b(?:call|text|messag|contact|email|bother|send)\w*(?: me| us| this number)?"
    r"(?: about this)? (?:again|anymore|any more)\b"
)
_ZH_GRIEVANCE = re.compile(
    "还是|至今|到现在|到今天|仍然|仍旧|依然|依旧|照样|照常|照旧|没人|没有人|无人|没办|没处理|没解决"
    "|没结果|没下文|没动静|没消息|没回|没找|没追|没来|没见|没用|没管|不管|等了|又来|又被|又是|又开始"
    "|再次|好几次|几次|多次|小时|几天|天了|个月|半天|一直没|一直不|一直在|老样子|根本|白报|跟没"
    "|还在|还没|啥也没|啥都没|拖着|一点用|第[二三四五六七八九几]次|半年|一年|几年"
)
#: a hedge just before a word of a grievance makes it a remark (`bit of a wait`, `稍微等了一会`):
#: the guide reads a hedged remark on an accepted outcome as basically satisfied
_EN_HEDGE = re.compile(r"\b(?:a bit|bit of|a little|little|slightly|a tad|tad)\b")
_ZH_HEDGE = re.compile("稍微|稍|有点|有些|一会|略")
#: a contrast, and a negation after it: the clause after the contrast decides
_EN_CONTRAST = re.compile(r"\b(?:but|though|although|except|however)\b.*\b(?:no|not|never)\b")
_ZH_CONTRAST = re.compile("(?:但是?|可是|就是|不过|只是|然而).*[没不未别无](?!毛病|问题|什么|得说)")
#: a rating asked back (`满意？钱包到现在都没找到`, `satisfied? with what`): rhetoric, not praise
_ZH_RATING_ASKED = re.compile("(?:满意|满不满意|好|行|快)[?？]")
_EN_RATING_ASKED = re.compile(r"\b(?:satisfied|happy|pleased|good|great|fast|quick)\s*\?")
#: n-gram sizes (shortest, longest): Chinese characters; letters inside English words
CHINESE_GRAMS = (1, 3)
ENGLISH_GRAMS = (2, 4)


@dataclass(frozen=True, slots=True)
class AnswerFeatures:
    """The rules' reading of an answer and the feature names the model weighs."""

    rules: RuleReading
    #: distinct, in a fixed order
    names: tuple[str, ...]
    clauses: int
    #: letters of a script the reader has no lexicon for (Korean, Cyrillic …) and none it has
    foreign: bool


def answer_features(text: str, language: str) -> AnswerFeatures:
    rules = read_rules(text, language)
    normalized = rules.normalized
    compact = (
        _SPACES.sub(" ", _SPACE_BETWEEN_CJK.sub("", normalized)).strip()
        if " " in normalized or "\t" in normalized
        else normalized
    )
    names: list[str] = []
    if rules.language == "zh-CN":
        _char_grams(compact, *CHINESE_GRAMS, names)
    else:
        words = _WORD.findall(compact)
        for word in words:
            _char_grams(word, *ENGLISH_GRAMS, names)
        padded = ["<", *words, ">"]
        names += ["w:" + word for word in words]
        names += [f"w2:{a} {b}" for a, b in zip(padded, padded[1:], strict=False)]
    clauses = 1 + sum(1 for part in _CLAUSE.split(compact)[1:] if part.strip())
    names.append(f"rule:{rules.classification.label.value}")
    names.append(f"by:{rules.decided_by}")
    for role, mild in zip(rules.roles, rules.mild, strict=True):
        names.append(f"role:{role}{'~' if mild else ''}")
    if rules.roles:
        names.append(f"last:{rules.roles[-1]}")
        if len(set(rules.roles)) > 1:
            names.append("mark:mixed")
    names += _markers(normalized, clauses)
    names += grievance_cues(normalized, rules.language)
    foreign = bool(_ANY_LETTER.search(normalized)) and not _KNOWN_LETTERS.search(normalized)
    return AnswerFeatures(rules, tuple(dict.fromkeys(names)), clauses, foreign)


def _char_grams(text: str, shortest: int, longest: int, into: list[str]) -> None:
    padded = f"<{text}>"
    for size in range(shortest, longest + 1):
        into += [padded[start : start + size] for start in range(len(padded) - size + 1)]


def _markers(normalized: str, clauses: int) -> list[str]:
    marks = [f"mark:clauses={min(clauses, 3)}{'+' if clauses >= 3 else ''}"]
    length = len(normalized)
    marks.append("mark:len=" + ("s" if length <= 4 else "m" if length <= 15 else "l"))
    if _QUOTE.search(normalized):
        marks.append("mark:quote")
    if not _QUESTION.isdisjoint(normalized):
        marks.append("mark:question")
    if not _EYE_ROLL.isdisjoint(normalized):
        marks.append("mark:eye_roll")
    if any(laugh in normalized for laugh in _LAUGHTER):
        marks.append("mark:laughter")
    if any(dots in normalized for dots in _ELLIPSIS):
        marks.append("mark:ellipsis")
    return marks


def grievance_cues(normalized: str, language: str) -> list[str]:
    """Markers of a grievance a positive reading may hide (`mark:grievance`, `mark:contrast`,
    `mark:rating_asked`)."""
    chinese = language == "zh-CN"
    text = _SPACE_BETWEEN_CJK.sub("", normalized) if chinese else normalized
    marks = []
    if chinese:
        found = _ZH_GRIEVANCE.finditer(text)
    else:
        text = _EN_NOT_AGAIN.sub("", text)
        found = _EN_GRIEVANCE.finditer(text)
    hedge = _ZH_HEDGE if chinese else _EN_HEDGE
    if any(not hedge.search(text, max(0, m.start() - 12), m.start()) for m in found):
        marks.append("mark:grievance")
    if (_ZH_CONTRAST if chinese else _EN_CONTRAST).search(text):
        marks.append("mark:contrast")
    if (_ZH_RATING_ASKED if chinese else _EN_RATING_ASKED).search(text):
        marks.append("mark:rating_asked")
    return marks
