"""The simulator's translator honours a prompt's "Required terms" block, or misses it.

vpsweb appends the block (``vpsweb.domain.glossary.block``) to every translation and
revision prompt of a job with a glossary: one line a term, ``- "source" → "target"
(in the poem, the title)``. Found by its tag, as a step is by its marker, it makes the
simulated translation write each target where its source occurs: on the line of the
poem that holds it, and in the title or the poet's name when the block says so. So a
plain offline run has no glossary flags.

A test plants a miss the way it plants a fault, by a directive: ``glossmiss`` (the
term translated otherwise: its target left out) or ``glossraw`` (left untranslated:
the source term written instead), in the model's name (every term, in every answer of
that model: one candidate's variant, or the revision's step) or in a term's note
(that term, in every answer).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from vpsweb.domain.glossary import BLOCK_TAG, occurs

How = Literal["use", "miss", "raw"]
_BLOCK = re.compile(rf"<{BLOCK_TAG}>(.*?)</{BLOCK_TAG}>", re.DOTALL)
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LINE = re.compile(rf"^- ({_QUOTED}) → ({_QUOTED})(?: \(in ([^)]*)\))?(.*)$", re.MULTILINE)
_STOPS = "，。、；：！？"


@dataclass(frozen=True)
class Wanted:
    source: str
    target: str
    places: frozenset[str]  # "the poem", "the title", "the poet's name"
    how: How  # what this answer does with it

    @property
    def written(self) -> str:
        """What the translation writes for the term ("" when it misses it)."""
        return {"use": self.target, "raw": self.source, "miss": ""}[self.how]


def _how(text: str) -> How | None:
    lowered = text.lower()
    return "miss" if "glossmiss" in lowered else "raw" if "glossraw" in lowered else None


def wanted(prompt: str, model: str = "") -> list[Wanted]:
    """The terms the prompt's block requires, each with what this answer does with it."""
    blocks = _BLOCK.findall(prompt)
    if not blocks:
        return []
    everywhere = _how(model)
    found = []
    for source, target, places, rest in _LINE.findall(blocks[-1]):
        where = frozenset(p.strip() for p in places.split(",")) if places else {"the poem"}
        how: How = everywhere or _how(rest) or "use"
        found.append(Wanted(json.loads(source), json.loads(target), frozenset(where), how))
    return found


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _append(line: str, word: str, chinese: bool) -> str:
    if not word:
        return line
    if chinese:  # before the line's closing punctuation; Latin words stay apart
        body = line.rstrip(_STOPS)
        sep = " " if _latin(body[-1:]) and _latin(word[:1]) else ""
        return f"{body}{sep}{word}{line[len(body) :]}"
    return f"{line} {word}".strip()


def into_poem(translation: str, source: list[str], terms: list[Wanted], chinese: bool) -> str:
    """The translation (one line per source line) with each term written on the line
    whose source holds it (the first line, if none does alone)."""
    lines = translation.split("\n")
    for term in terms:
        if "the poem" not in term.places:
            continue
        at = next((i for i, s in enumerate(source) if occurs(term.source, s)), None)
        if at is None or at >= len(lines):
            at = next((i for i, line in enumerate(lines) if line.strip()), 0)
        lines[at] = _append(lines[at], term.written, chinese)
    return "\n".join(lines)


def into_name(text: str, terms: list[Wanted], place: str, chinese: bool) -> str:
    """A title (``place`` "the title") or a poet's name ("the poet's name") with the
    terms that occur there."""
    for term in terms:
        if place in term.places:
            text = _append(text, term.written, chinese)
    return text


def honour(
    prompt: str, model: str, source: list[str], chinese: bool, texts: tuple[str, str, str]
) -> tuple[str, str, str]:
    """(poem, title, poet) of an answer with the prompt's required terms written in (or
    missed, as the directives say); unchanged without a block."""
    poem, title, poet = texts
    terms = wanted(prompt, model)
    if not terms:
        return texts
    return (
        into_poem(poem, source, terms, chinese),
        into_name(title, terms, "the title", chinese),
        into_name(poet, terms, "the poet's name", chinese),
    )
