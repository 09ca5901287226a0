"""The names a batch entry's fields go by, each mapped once to the request's field.

A manifest speaks the request's own field names (``source_lang``, the dials flat or
under ``strategy:``), the command line's spellings (``source-lang``, ``mode``), and
three names of its own: ``file`` or ``text`` for the poem, ``name`` for its output
files, and ``background_file`` / ``few_shots_file`` for texts kept in files (as the
command line's ``--background FILE`` and ``--few-shots FILE``). The table is built from
``TranslationRequest`` itself, so a field added to the request is a manifest field too.
"""

from __future__ import annotations

import re
from typing import Any

from vpsweb.domain.request import StrategyOverrides, TranslationRequest

TEXT, FILE, NAME = "text", "file", "name"
# A text kept in a file (relative to the manifest) -> the request field it fills.
FILE_FIELDS = {"background_file": "background_briefing", "few_shots_file": "few_shots"}
DIALS = tuple(StrategyOverrides.model_fields)
TOP_LEVEL = tuple(f for f in TranslationRequest.model_fields if f not in ("poem", "strategy"))
# The canonical names, in the order messages list them.
FIELDS = (FILE, TEXT, NAME, *TOP_LEVEL, *DIALS, *FILE_FIELDS)

# On the command line --few-shots and --background name files; here the hyphenated
# spellings mean the same (a file), and the underscored field names mean the text.
_CLI_NAMES = {
    "poem": TEXT,
    "mode": "workflow_mode",
    "background": "background_file",
    "few-shots": "few_shots_file",
}
_NO_HYPHEN_ALIAS = {"few_shots", "background_briefing"}
# Fields whose value is text: a YAML number (``title: 1984``) is meant as text.
_TEXTUAL = {TEXT, FILE, NAME, "title", "author", "prosody_target", *FILE_FIELDS}
_FILES = {FILE, *FILE_FIELDS}
_WHOLE = re.compile(r"\s*\+?\d+\s*")


def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for name in FIELDS:
        table[name] = name
        if name not in _NO_HYPHEN_ALIAS:
            table[name.replace("_", "-")] = name
    for dial in DIALS:
        table[f"strategy.{dial}"] = dial
    return table | _CLI_NAMES


ALIASES = _aliases()


def canonical(key: str) -> str | None:
    """The field a key means (case ignored, and spaces as underscores: a spreadsheet's
    "Source Lang" is source_lang), or None."""
    return ALIASES.get(re.sub(r"\s+", "_", key.strip().lower()))


def allowed() -> str:
    return ", ".join(FIELDS)


def convert(name: str, value: Any) -> Any:
    """A value as the request expects it: CSV cells are strings, so counts and costs are
    read as numbers here and a straggler policy in the command line's spelling is read as
    the request's; anything else is left for the request's own validation. ValueError
    says what was expected."""
    if not isinstance(value, str):
        if name not in _TEXTUAL:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(
            f"expected {'a file name' if name in _FILES else 'text'}, got {value!r:.40}"
        )
    if name == "parallel_count":
        if not _WHOLE.fullmatch(value):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if name == "max_cost":
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if name == "straggler":
        return straggler(value)
    return value


def straggler(text: str) -> dict[str, Any]:
    """``wait_all`` or ``quorum[:FRACTION[:GRACE]]``, as ``--straggler`` spells it."""
    policy, *values = text.strip().split(":")
    if policy == "wait_all" and not values:
        return {"policy": policy}
    if policy != "quorum" or len(values) > 2:
        raise ValueError(
            f"{text!r}: expected wait_all or quorum[:FRACTION[:GRACE]], e.g. quorum:0.75:0.1"
        )
    return {"policy": policy} | dict(zip(("quorum", "grace"), values, strict=False))
