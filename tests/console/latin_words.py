"""What a reader of the Chinese console sees, as words: the visible text of an HTML page
(text nodes, button values, placeholders, titles), and the Latin-letter words in it that
the allow-list does not name.

The allow-list is explicit and small: codes and abbreviations a Chinese operator reads as
they are (SLA, CSV, API …); the caller adds the names the data holds (user names, script
names, unit codes), which are data and not the console's words. Content that is data rather than the console's own words is left
out of the check by its markup, not by the list: `<code>` (ids, node paths), the script
editor's source (`textarea.code`), the English switch (`#lang-switch`), and the user-entered
values of form fields.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: words the Chinese console may show as they are
ALLOWED = frozenset(
    {
        "SLA", "CSV", "PDF", "API", "Excel", "SMS", "ID", "YAML", "IVR", "OK",
        "UTC", "Asterisk", "Twilio", "Vosk", "zh-CN", "en-US",
        # units and times
        "s", "ms", "kB", "MB",
    }
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'_-]*[A-Za-z]|[A-Za-z]")
#: a masked phone (138****5678), a ticket or incident number (JJ2026…, HF-…), a script or
#: user name with digits, dots or dashes: identifiers, not words
_IDENTIFIER = re.compile(r"^(?=.*[0-9._@/*-])[A-Za-z0-9._@/*+:-]+$")
_SKIP_TAGS = {"script", "style", "code", "pre", "noscript", "template", "svg"}
_VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "col", "area", "base"}


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.chunks: list[str] = []

    def _skipping(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        classes = (named.get("class") or "").split()
        skip = (
            tag in _SKIP_TAGS
            or named.get("id") == "lang-switch"
            or named.get("translate") == "no"
            or (tag == "textarea" and "code" in classes)
        )
        if not self._skipping() and not skip:
            for attribute in ("placeholder", "title", "aria-label", "alt"):
                if named.get(attribute):
                    self.chunks.append(named[attribute] or "")
            if tag == "input" and named.get("type") in ("submit", "button"):
                self.chunks.append(named.get("value") or "")
        if tag not in _VOID:
            self.stack.append((tag, skip))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        if not self._skipping():
            self.chunks.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.chunks).split())


def stray_latin_words(text: str, also_allowed: frozenset[str] = frozenset()) -> list[str]:
    """The Latin-letter words of `text` that are neither allowed nor identifiers."""
    stray = []
    for token in text.split():
        if _IDENTIFIER.match(token) and any(c.isdigit() for c in token):
            continue
        for word in _WORD.findall(token):
            if word not in ALLOWED and word not in also_allowed:
                stray.append(word)
    return stray
