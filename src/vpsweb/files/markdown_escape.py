"""Model and user text made safe to put into the Markdown export.

The Markdown file is opened in viewers that render HTML (editors' previews, Git
hosts, static-site tools), and everything in it but the headings comes from a
model or a submitter: a ``<script>`` or ``<img onerror=...>`` in a note, a
translation or a title must be shown, never run. So ``<``, ``>`` and ``&`` are
always written as entities (no raw tag, autolink or entity survives), and links
are defused (a ``javascript:`` target is a click away from running).

Poems are not fenced as code: a fence is closed by a line of backticks inside the
poem, and entities are shown literally inside one. They are written as verse:
each line kept (a hard break), stanza breaks kept, indentation kept (as no-break
spaces, which Markdown does not read as a code block), and every character that
Markdown would read as syntax escaped, so the poem renders as written.
"""

from __future__ import annotations

import html
import re

NBSP = "\u00a0"
HARD_BREAK = "  "  # two trailing spaces: a line break in the rendering, invisible raw

_INLINE = re.compile(r"[\\`*_\[\]~|]")  # emphasis, code, links, strikethrough, tables
# A line that Markdown reads as a heading, list item, rule or setext underline.
_BLOCK_MARK = re.compile(r"^(#|[-+=])")
_ORDERED = re.compile(r"^(\d{1,9})([.)])")
_LINK_TARGET = re.compile(r"\]\(")
_LINK_DEFINITION = re.compile(r"^(\s{0,3})\[(?=[^\]\n]*\]:)", re.MULTILINE)


def _entities(text: str) -> str:
    return html.escape(text, quote=False)


def prose(text: str) -> str:
    """Notes, rationales, suggestions: the model's Markdown (lists, emphasis) stays,
    but no HTML and no link: ``[L2](...)`` and ``[x]: url`` lose their target."""
    text = _entities(text)
    text = _LINK_TARGET.sub(r"]\\(", text)
    return _LINK_DEFINITION.sub(r"\1\\[", text)


def inline(text: str) -> str:
    """A title, a name, an error: one line (a newline would end a heading or a list
    item), shown literally."""
    flat = " ".join(text.split())
    return _entities(_INLINE.sub(r"\\\g<0>", flat))


def _verse_line(line: str, *, first: bool) -> str:
    body = line.lstrip(" \t")
    # Renderers trim a paragraph's leading whitespace, no-break spaces included, but
    # not an entity: a stanza's first line keeps its indent as &nbsp;.
    space = "&nbsp;" if first else NBSP
    indent = space * len(line[: len(line) - len(body)].expandtabs(4))
    body = _entities(_INLINE.sub(r"\\\g<0>", body.rstrip()))
    body = _BLOCK_MARK.sub(r"\\\1", body)
    body = _ORDERED.sub(r"\1\\\2", body)
    return indent + body + HARD_BREAK


def verse(text: str) -> list[str]:
    """A poem as Markdown lines that render as the poem: one line each, blank lines
    as stanza breaks (a run of them as one), nothing read as Markdown or HTML."""
    out: list[str] = []
    for line in text.strip("\n").splitlines():
        if line.strip():
            out.append(_verse_line(line, first=not out or not out[-1]))
        elif out and out[-1]:
            out.append("")
    return out
