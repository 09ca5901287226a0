"""What tells a batch's entries apart: their names (for output files), their titles
taken from file names, their order, and when two are the same translation twice."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, NamedTuple

from vpsweb.domain.request import TranslationRequest

MAX_NAME_CHARS = 60
# Names a poem cannot take: Windows' device names, and the batch's own output files.
RESERVED = {"con", "prn", "aux", "nul", "anthology", "summary"} | {
    f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10)
}


class Named(NamedTuple):
    """An entry as naming sees it."""

    where: str
    given: tuple[str, str] | None  # (name, its place) when the manifest names it
    hint: str  # what an automatic name is made from: the file's stem or the title


def slug(text: str) -> str:
    """A filesystem-safe name: lower-case letters (any script) and digits joined by
    hyphens, at most MAX_NAME_CHARS; "" when nothing is left."""
    flat = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", text).lower()).strip("-")
    return flat[:MAX_NAME_CHARS].strip("-")


def title_from_stem(stem: str) -> str:
    """``03_quiet-night_thought`` → ``Quiet night thought``: separators become spaces and
    a leading number (kept only to order the files) goes."""
    words = re.sub(r"[\s_-]+", " ", stem).strip()
    unnumbered = re.sub(r"^\d+[\s.]*", "", words)
    text = unnumbered or ("" if words.isdigit() else words)
    return text[:1].upper() + text[1:]


def natural_key(name: str) -> list[Any]:
    """Numbers compared as numbers: ``poem2`` before ``poem10``."""
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)] + [name]


def name_problems(items: Sequence[Named]) -> list[str]:
    """Names given in the manifest are used as written (slugged): two alike, or one
    that cannot name a file, is refused rather than silently renumbered."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for item in items:
        if item.given is None:
            continue
        given, place = item.given
        name = slug(given)
        if not name or name in RESERVED:
            problems.append(f"{place}: name {given!r} cannot name files: choose another")
        elif name in first:
            problems.append(f"{place}: name {name!r} is also the name of {first[name]}")
        else:
            first[name] = item.where
    return problems


def assign_names(items: Sequence[Named]) -> list[str]:
    """A unique name per entry: the given ones as written (``name_problems`` refused
    their clashes), the others from their hint, numbered -2, -3 where they would clash."""
    taken = RESERVED | {slug(i.given[0]) for i in items if i.given}
    names = []
    for item in items:
        if item.given:
            names.append(slug(item.given[0]))
            continue
        base = slug(item.hint) or "poem"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names.append(name)
    return names


def duplicate_problems(items: Sequence[tuple[str, TranslationRequest]]) -> list[str]:
    """Each entry that repeats an earlier one (the same poem, the same settings), with
    both places: it would pay twice for one translation."""
    problems: list[str] = []
    first: dict[str, str] = {}
    for where, request in items:
        key = _identity(request)
        if key in first:
            problems.append(
                f"{where}: the same poem with the same settings as {first[key]}: "
                "remove one (or change a setting)"
            )
        else:
            first[key] = where
    return problems


def _identity(request: TranslationRequest) -> str:
    """The request, with the poem's line endings and trailing spaces (invisible in an
    editor) left out."""
    data = request.model_dump(mode="json")
    data["poem"] = "\n".join(line.rstrip() for line in request.poem.strip().splitlines())
    return json.dumps(data, sort_keys=True, ensure_ascii=False)
