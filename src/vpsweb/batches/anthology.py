"""A batch's anthology: each poem's source beside its final translation, with contents.

What a translator reads and hands on when a batch is done, in two forms: Markdown
(editors, Git hosts) and one self-contained HTML file that prints from a browser
(the contents on the first page, then each poem on a page of its own). Every poem of
the batch is in it, in the batch's order; one that was not translated is listed
with its status and cause, so a gap is seen at once rather than found later.

Everything in it but its own headings came from a submitter or a model (titles,
poems, translations, errors) and may hold markup: the Markdown goes through
``files.markdown_escape``, the HTML through ``html.escape``, and the HTML forbids
scripts in its own Content-Security-Policy as well, so one slip runs nothing.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from vpsweb.domain.languages import language_name
from vpsweb.domain.models import Totals, TranslationRequest
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.markdown_escape import inline, verse

DEFAULT_TITLE = "Anthology"
# A poem's name names its files and its anchor: word characters, "-" and "." (not first).
PoemName = Annotated[str, StringConstraints(pattern=r"^\w[\w.-]{0,119}$")]


class AnthologyItem(BaseModel):
    """One poem of a batch as its outputs show it: where it came from, what was asked,
    how its job ended and, when it was translated, the job's output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PoemName
    where: str  # "poems/li-bai.txt", "poems.csv row 4": where a person finds the poem
    request: TranslationRequest
    status: str  # the job's: succeeded, failed, cancelled (queued or running: not yet)
    output: TranslationOutput | None = None
    error: str | None = None
    job_id: str = ""
    # What a job without an output spent, when the caller knows it (a translated
    # poem's totals are in its output): a failed job was paid for all the same.
    spent: Totals | None = None


def anchor(item: AnthologyItem) -> str:
    """The poem's fragment id, the same in both forms: ``anthology.html#poem-<name>``."""
    return f"poem-{item.name}"


def heading(item: AnthologyItem) -> str:
    """The translation's title, else the source's, else the poem's name."""
    final = item.output.final.translated_title if item.output is not None else ""
    return final or item.request.title or item.name


def _poet(item: AnthologyItem) -> str:
    final = item.output.final.translated_poet if item.output is not None else ""
    return final or item.request.author


def status_text(item: AnthologyItem) -> str:
    """Why a poem has no translation here, as a sentence (its cause, if known)."""
    cause = f": {' '.join(item.error.split())}" if item.error else ""
    said = {
        "failed": "Not translated: the job failed",
        "cancelled": "Not translated: the job was cancelled",
        "succeeded": "Translated, but its result is no longer available",
    }.get(item.status, f"Not translated yet: the job is {item.status}")
    return said + cause


def tally(items: Sequence[AnthologyItem]) -> str:
    """'12 poems from Chinese into English: 10 translated, 1 failed, 1 cancelled.'"""
    done = sum(i.output is not None for i in items)
    others = Counter(i.status for i in items if i.output is None)
    counts = [f"{done} translated", *(f"{n} {status}" for status, n in sorted(others.items()))]
    pairs = {(i.request.source_lang, i.request.target_lang) for i in items}
    langs = ""
    if len(pairs) == 1:
        src, tgt = next(iter(pairs))
        langs = f" from {language_name(src)} into {language_name(tgt, target=True)}"
    poems = f"{len(items)} poem{'' if len(items) == 1 else 's'}"
    return f"{poems}{langs}: {', '.join(counts)}."


def _origin(item: AnthologyItem) -> str:
    job = item.output.job_id if item.output is not None else item.job_id
    return f"From {item.where}" + (f" · job {job}" if job else "")


# --- Markdown ---------------------------------------------------------------------


def _md_entry(n: int, item: AnthologyItem) -> list[str]:
    target = f'<a id="{html.escape(anchor(item))}"></a>'
    lines = ["---", "", target, "", f"## {n}. {inline(heading(item))}", ""]
    req, poet = item.request, _poet(item)
    if poet:
        lines += [f"*{inline(poet)}*", ""]
    if item.output is None:
        return [*lines, f"**{inline(status_text(item))}**", "", inline(_origin(item)), ""]
    original = " — ".join(inline(t) for t in (req.title, req.author) if t)
    lines += [f"### Original ({language_name(req.source_lang)})", ""]
    lines += [f"**{original}**", ""] if original else []
    lines += [*verse(req.poem), ""]
    lines += [f"### Translation ({language_name(req.target_lang, target=True)})", ""]
    lines += [*verse(item.output.final.translation), ""]
    return [*lines, inline(_origin(item)), ""]


def anthology_markdown(items: Sequence[AnthologyItem], *, title: str) -> str:
    """Contents (a link to each poem), then each poem: its title and poet, the source,
    then the final translation; a poem not translated says why."""
    lines = [f"# {inline(title or DEFAULT_TITLE)}", "", inline(tally(items)), ""]
    lines += ["## Contents", ""]
    for n, item in enumerate(items, 1):
        poet = f" — {inline(_poet(item))}" if _poet(item) else ""
        missing = f" ({inline(item.status)})" if item.output is None else ""
        lines.append(f"{n}. [{inline(heading(item))}](#{anchor(item)}){poet}{missing}")
    lines.append("")
    for n, item in enumerate(items, 1):
        lines += _md_entry(n, item)
    return "\n".join(lines)


# --- HTML -------------------------------------------------------------------------

# Styles only: no script, no font or image from anywhere, no form, no base URL.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
CSS = """
body { font-family: Georgia, "Noto Serif", "Noto Serif CJK SC", "Songti SC", SimSun, serif;
  line-height: 1.6; color: #1b1b1b; background: #fff; max-width: 62rem; margin: 0 auto;
  padding: 1.5rem; }
h1 { font-size: 2rem; margin: 0 0 .3rem; overflow-wrap: anywhere; }
.tally, .poet, .where, .original { color: #555; }
.toc ol { padding-left: 2.2rem; }
.toc li { margin: .15rem 0; overflow-wrap: anywhere; }
.toc .status, .status { color: #8a1c1c; }
article.poem { border-top: 1px solid #ccc; margin-top: 2.5rem; padding-top: 1.5rem; }
article.poem h2 { font-size: 1.5rem; margin: 0; overflow-wrap: anywhere; }
.original { font-size: 1rem; font-weight: normal; }
.poet { margin: .2rem 0 0; font-style: italic; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
  gap: 1rem 2.5rem; margin-top: 1.2rem; }
.pair h3 { font: 600 .75rem/1.2 system-ui, sans-serif; letter-spacing: .08em;
  text-transform: uppercase; color: #666; margin: 0 0 .6rem; }
.verse { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.where { font-size: .85rem; margin-top: 1.2rem; overflow-wrap: anywhere; }
@media (max-width: 40rem) {
  body { padding: 1rem; }
  .pair { grid-template-columns: minmax(0, 1fr); }
}
@page { margin: 18mm 16mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  a { color: inherit; text-decoration: none; }
  .cover { break-after: page; }
  article.poem { break-before: page; break-inside: avoid; border-top: none;
    margin-top: 0; padding-top: 0; }
  article.poem.missing { break-before: auto; margin-top: 2rem; }
  .pair { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
  h2, h3, header { break-after: avoid; }
}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _span(text: str, lang: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f'<span{attr} lang="{_e(lang)}">{_e(text)}</span>'


def _html_toc(items: Sequence[AnthologyItem]) -> list[str]:
    lines = ['<nav class="toc" aria-labelledby="contents">', '<h2 id="contents">Contents</h2>']
    lines.append("<ol>")
    for item in items:
        lang = item.request.target_lang if item.output is not None else item.request.source_lang
        entry = f'<a href="#{_e(anchor(item))}">{_span(heading(item), lang)}</a>'
        if poet := _poet(item):
            entry += f' <span class="poet">— {_span(poet, lang)}</span>'
        if item.output is None:
            entry += f' <span class="status">({_e(item.status)})</span>'
        lines.append(f"<li>{entry}</li>")
    return [*lines, "</ol>", "</nav>"]


def _html_header(n: int, item: AnthologyItem) -> list[str]:
    req = item.request
    lang = req.target_lang if item.output is not None else req.source_lang
    title = f"{n}. {_span(heading(item), lang)}"
    if item.output is not None and req.title and req.title != heading(item):
        title += " " + _span(req.title, req.source_lang, "original")
    poet = _span(_poet(item), lang) if _poet(item) else ""
    if item.output is not None and req.author and req.author != _poet(item):
        poet += (" " if poet else "") + _span(req.author, req.source_lang, "original")
    lines = ["<header>", f'<h2 id="{_e(anchor(item))}-title">{title}</h2>']
    lines += [f'<p class="poet">{poet}</p>'] if poet else []
    return [*lines, "</header>"]


def _html_entry(n: int, item: AnthologyItem) -> list[str]:
    missing = " missing" if item.output is None else ""
    lines = [
        f'<article class="poem{missing}" id="{_e(anchor(item))}" '
        f'aria-labelledby="{_e(anchor(item))}-title">',
        *_html_header(n, item),
    ]
    req = item.request
    if item.output is None:
        lines.append(f'<p class="status"><strong>{_e(status_text(item))}</strong></p>')
    else:
        lines += [
            '<div class="pair">',
            f'<section class="source"><h3>Original · {_e(language_name(req.source_lang))}</h3>',
            f'<div class="verse" lang="{_e(req.source_lang)}">{_e(req.poem.strip(chr(10)))}</div>',
            "</section>",
            f'<section class="target"><h3>Translation · '
            f"{_e(language_name(req.target_lang, target=True))}</h3>",
            f'<div class="verse" lang="{_e(req.target_lang)}">'
            f"{_e(item.output.final.translation.strip(chr(10)))}</div>",
            "</section>",
            "</div>",
        ]
    return [*lines, f'<p class="where">{_e(_origin(item))}</p>', "</article>"]


def anthology_html(items: Sequence[AnthologyItem], *, title: str) -> str:
    """One HTML file with its styles inline and nothing fetched: contents, then each
    poem with the source and the final translation side by side (stacked on a narrow
    screen), printable with each poem on a page of its own."""
    name = _e(title or DEFAULT_TITLE)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{name}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        '<header class="cover">',
        f"<h1>{name}</h1>",
        f'<p class="tally">{_e(tally(items))}</p>',
        *_html_toc(items),
        "</header>",
        "<main>",
    ]
    for n, item in enumerate(items, 1):
        lines += _html_entry(n, item)
    return "\n".join([*lines, "</main>", "</body>", "</html>", ""])
