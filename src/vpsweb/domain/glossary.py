"""A glossary: the translations a job (or a whole collection) must use for its names
and terms, the block that asks for them in the prompts, and the check of each text.

Why: a collection translated poem by poem drifts (长安 becomes Chang'an in one poem,
Changan in the next, "the capital" in a third) and no judge notices, since each poem
is judged alone. So the translator in charge gives the required translations once;
every translation and revision prompt lists the terms that occur in its poem (its
title or its poet's name), and every candidate and the revision is checked for them.
A miss is either "left untranslated" (the source term is still there) or "translated
otherwise". In ``flag`` mode a candidate with a miss is judged as usual and flagged;
in ``strict`` mode it is kept from the judge like a candidate that fails a gate.

Matching is on normalised text (NFKC, curly quotes straightened, whitespace runs as
one space, case-folded, which is what makes Latin scripts case-insensitive), and a
term that begins or ends with a letter of a spaced script (Latin, Polish) matches
whole words only, so "Chang" is not found in "Changsha"; Chinese has no word breaks,
so a Chinese term matches anywhere. Pure: parsing a file's text lives in
``glossary_text``, reading the file in ``vpsweb.files.glossary_file``.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from vpsweb.domain.plain_text import one_line
from vpsweb.domain.tokens import is_cjk

MAX_TERMS = 500
MAX_TERM_CHARS = 200
MAX_NOTE_CHARS = 500
GlossaryMode = Literal["flag", "strict"]
GLOSSARY_MODES: tuple[str, ...] = ("flag", "strict")
# Where a term of the source may occur, and the translated text that must then hold it.
Place = Literal["poem", "title", "poet"]
PLACES: tuple[Place, ...] = ("poem", "title", "poet")
_IN = {"poem": "", "title": " in the title", "poet": " in the poet's name"}


def _nonblank(value: str) -> str:
    value = one_line(value)
    if not value:
        raise ValueError("is empty")
    return value


def _one_spaced(value: Any) -> Any:
    """A note may come folded over lines (YAML): it is one line of prose."""
    return " ".join(value.split()) if isinstance(value, str) else value


Term = Annotated[str, Field(max_length=MAX_TERM_CHARS), AfterValidator(_nonblank)]
Note = Annotated[
    str, BeforeValidator(_one_spaced), Field(max_length=MAX_NOTE_CHARS), AfterValidator(one_line)
]


class GlossaryTerm(BaseModel):
    """One required translation: ``source`` as it is written in the poems, ``target`` as
    every translation must write it, and an optional ``note`` for the translator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Term
    target: Term
    note: Note = ""


class Glossary(BaseModel):
    """Terms (at most 500, no source twice) and what a miss does (``mode``).

    ``terms`` may also be given as a mapping, source -> target or source -> {target,
    note}, as a YAML glossary spells it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: list[GlossaryTerm] = Field(min_length=1, max_length=MAX_TERMS)
    mode: GlossaryMode = "flag"

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("terms"), dict):
            terms = [
                {"source": k, **(v if isinstance(v, dict) else {"target": v})}
                for k, v in value["terms"].items()
            ]
            return {**value, "terms": terms}
        return value

    @model_validator(mode="after")
    def _distinct(self) -> Glossary:
        seen: dict[str, int] = {}
        for i, term in enumerate(self.terms):
            key = _key(term.source)
            if key in seen:
                raise ValueError(
                    f"terms {seen[key]} and {i} have the same source term {term.source!r}; "
                    "give each source term once"
                )
            seen[key] = i
        return self


@dataclass(frozen=True)
class Texts:
    """A poem, its title and its poet's name: the source's, or a translation's."""

    poem: str
    title: str = ""
    poet: str = ""

    def place(self, where: Place) -> str:
        return {"poem": self.poem, "title": self.title, "poet": self.poet}[where]


@dataclass(frozen=True)
class Required:
    """A term whose source occurs in the source texts, and where."""

    term: GlossaryTerm
    places: tuple[Place, ...]


@dataclass(frozen=True)
class Miss:
    """A required term a translated text does not hold."""

    term: GlossaryTerm
    place: Place
    untranslated: bool  # the source term is still there

    @property
    def message(self) -> str:
        how = "left untranslated" if self.untranslated else "translated otherwise"
        return (
            f"glossary: {_quoted(self.term.source)} should be {_quoted(self.term.target)}"
            f"{_IN[self.place]} ({how})"
        )


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def normalised(text: str) -> str:
    """What terms are matched on (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return " ".join(text.split())


@lru_cache(maxsize=8192)
def _key(term: str) -> str:
    """A term (at most 200 characters) normalised once: a batch's poems share the glossary,
    and sizing, estimating and checking each look at every term of it."""
    return normalised(term)


def _spaced(ch: str) -> bool:
    """A letter or digit of a script that separates words by spaces."""
    return ch.isalnum() and not is_cjk(ch)


def _found(term: str, text: str) -> bool:
    """Whether the (normalised) term occurs in the (normalised) text; whole words only
    at an edge where the term begins or ends with a spaced script's letter."""
    if not term:
        return False
    start = text.find(term)
    while start >= 0:
        end = start + len(term)
        left = not _spaced(term[0]) or start == 0 or not _spaced(text[start - 1])
        right = not _spaced(term[-1]) or end == len(text) or not _spaced(text[end])
        if left and right:
            return True
        start = text.find(term, start + 1)
    return False


def occurs(term: str, text: str) -> bool:
    """Whether ``term`` occurs in ``text``, as the glossary matches (normalised)."""
    return _found(normalised(term), normalised(text))


def required(glossary: Glossary, source: Texts) -> list[Required]:
    """The terms whose source occurs in the poem, its title or its poet's name."""
    texts = {p: normalised(source.place(p)) for p in PLACES}
    found = []
    for term in glossary.terms:
        key = _key(term.source)
        places = tuple(p for p in PLACES if _found(key, texts[p]))
        if places:
            found.append(Required(term, places))
    return found


def relevant(glossary: Glossary | None, source: Texts) -> Glossary | None:
    """The glossary cut to the terms that occur in the source (None: none does): what
    decides this poem's translation, so what a content key of a batch's poem should
    cover (a term added for another poem does not make this one be paid for again)."""
    found = required(glossary, source) if glossary is not None else []
    if glossary is None or not found:
        return None
    return Glossary(terms=[r.term for r in found], mode=glossary.mode)


def misses(glossary: Glossary, source: Texts, translated: Texts) -> list[Miss]:
    """Every required term the translated texts do not hold, where each is required."""
    found = []
    for need in required(glossary, source):
        target, src = _key(need.term.target), _key(need.term.source)
        for place in need.places:
            text = normalised(translated.place(place))
            if not _found(target, text):
                found.append(Miss(need.term, place, untranslated=_found(src, text)))
    return found


def reasons(glossary: Glossary | None, source: Texts, translated: Texts) -> list[str]:
    """The misses as a gate states its reasons (none without a glossary)."""
    if glossary is None:
        return []
    return [m.message for m in misses(glossary, source, translated)]


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_WHERE = {"poem": "the poem", "title": "the title", "poet": "the poet's name"}
BLOCK_TAG = "required_terms"
BLOCK_INTRO = (
    "Required terms (the glossary of the translator in charge): wherever a source term "
    "on the left occurs, translate it exactly as given on the right, in the poem, its "
    "title and the poet's name alike."
)


def block(glossary: Glossary | None, source: Texts) -> str:
    """The "Required terms" block appended to a translation or revision prompt: the
    terms that occur in this poem, its title or its poet's name ("" for none). One line
    a term, ``- "source" → "target" (in the poem) — note``, the terms quoted as JSON
    strings so that the offline simulator (and a reader) can tell where each ends."""
    found = required(glossary, source) if glossary is not None else []
    if not found:
        return ""
    lines = []
    for need in found:
        where = ", ".join(_WHERE[p] for p in need.places)
        note = f" — {need.term.note}" if need.term.note else ""
        pair = f"{_quoted(need.term.source)} → {_quoted(need.term.target)}"
        lines.append(f"- {pair} (in {where}){note}")
    body = "\n".join(lines)
    return f"{BLOCK_INTRO}\n<{BLOCK_TAG}>\n{body}\n</{BLOCK_TAG}>"
