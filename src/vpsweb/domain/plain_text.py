"""What user text may hold: plain text, and one-line fields quoted in the prompts.

Shared by the request and the glossary (whose terms are quoted in prompts just as a
title is), so both refuse the same things with the same words.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# C0 and C1 control characters and DEL; newlines and tabs are text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Anything ``one_line`` may refuse (and tabs, which it allows): one search settles the
# usual case, since a batch's glossary validates hundreds of terms for every poem.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f-\x9f<>]")


def plain_text(value: str) -> str:
    """Free text (a poem, a briefing, examples): lines and tabs, no control characters
    (a NUL or an escape sequence is never part of a poem, and models mishandle them)."""
    if found := _CONTROL.search(value):
        raise ValueError(
            f"contains a control character ({found.group()!r} at position {found.start()}); "
            "paste plain text"
        )
    return value


def one_line(value: str) -> str:
    """A title, a name, a dial: one line of plain text, and no tags, since it is quoted
    in the prompts beside the protocol's own tags."""
    if _SUSPECT.search(value) is None:
        return value.strip()
    plain_text(value)
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    if "<" in value or ">" in value:
        raise ValueError("must not contain '<' or '>'")
    return value.strip()


PlainText = Annotated[str, AfterValidator(plain_text)]
OneLine = Annotated[str, AfterValidator(one_line)]
# A briefing or examples: long, but bounded (each goes into every candidate's prompt).
LongText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(plain_text)]
