"""The anthology (issue 24, "What comes out"): each poem's source beside its final
translation, with contents, in Markdown and in one printable HTML file.

The items are whole jobs run in-process (tests/helpers/anthology.py), with markup
planted in the source poem, the translation, the translated title and poet, and a
failed job's error. The HTML is read back tag by tag; the Markdown is rendered by a
real Markdown library with raw HTML on, as a permissive viewer would. The headless
browser's view of the same file is tests/browser/test_anthology.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from pydantic import ValidationError

from tests.helpers.anthology import (
    CHUN_WANG,
    HOSTILE_POET,
    HOSTILE_TITLE,
    IMG,
    SCRIPT,
    not_translated,
    request,
    sample_batch,
)
from tests.helpers.poems import FOG, JING_YE_SI
from vpsweb.batches.anthology import (
    AnthologyItem,
    anthology_html,
    anthology_markdown,
    status_text,
    tally,
)

# What our own HTML is made of; nothing a model or a submitter wrote adds to it.
HTML_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "header", "nav", "main"),
    *("h1", "h2", "h3", "p", "ol", "li", "a", "span", "strong", "article", "section", "div"),
}
HTML_ATTRS = {
    *("lang", "charset", "http-equiv", "content", "name", "class", "id", "href"),
    *("aria-labelledby",),
}
# Markdown's own structure, and the anchors the contents link to.
MD_TAGS = {"p", "br", "em", "strong", "h1", "h2", "h3", "ol", "li", "hr", "a"}


class Page(HTMLParser):
    """Every tag with its attributes, and the text a reader sees (style excluded)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)

    def shown(self) -> str:
        return "".join(self.text)

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for t, attrs in self.tags
            if t == tag and all(wanted[k] in (attrs.get(k) or "").split() for k in wanted)
        ]


@pytest.fixture(scope="module")
def items() -> list[AnthologyItem]:
    return sample_batch()


def test_html_has_contents_linking_to_every_poem_in_the_batchs_order(items) -> None:
    page = Page(anthology_html(items, title="Tang poems"))
    links = [a["href"] for a in page.all("a")]
    articles = [a["id"] for a in page.all("article")]
    assert links == [f"#{i}" for i in articles]
    assert articles == [f"poem-{item.name}" for item in items]
    shown = page.shown()
    assert "4 poems from Chinese into English: 2 translated, 1 cancelled, 1 failed." in shown
    assert shown.index("Quiet Night Thought") < shown.index("鹿柴") < shown.index("春晓")


def test_html_puts_the_source_beside_the_translation_with_their_languages(items) -> None:
    markup = anthology_html(items, title="Tang poems")
    page = Page(markup)
    source = [a for a in page.all("div", **{"class": "verse"}) if a["lang"] == "zh-CN"]
    target = [a for a in page.all("div", **{"class": "verse"}) if a["lang"] == "en"]
    assert len(source) == len(target) == 2  # the two translated poems, none for the others
    assert page.all("section", **{"class": "source"}) and page.all("section", **{"class": "target"})
    shown = page.shown()
    for item in items[:2]:
        assert item.output is not None
        assert item.request.poem.strip() in shown
        assert item.output.final.translation.strip() in shown
    # The failed and the cancelled poem are there, with why.
    assert status_text(items[2]) in shown and "HTTP 401" in shown
    assert "Not translated: the job was cancelled" in shown
    # Text in the translation's language is marked so, in the contents too.
    assert page.all("span", lang="en") and page.all("html", lang="en")


def test_html_shows_hostile_text_and_runs_none_of_it(items) -> None:
    markup = anthology_html(items, title=f'Poems {SCRIPT} "quoted" & more')
    page = Page(markup)
    assert {t for t, _ in page.tags} <= HTML_TAGS
    assert {k for _, attrs in page.tags for k in attrs} <= HTML_ATTRS
    assert [a for a in page.all("a") if not (a["href"] or "").startswith("#")] == []
    assert markup.lower().count("<script") == 0 and "<img" not in markup.lower()
    shown = page.shown()
    for text in (HOSTILE_TITLE, HOSTILE_POET, SCRIPT, IMG, "<b>bad key</b>"):
        assert text in shown, text
    assert f'Poems {SCRIPT} "quoted" & more' in shown  # the batch's own title too
    assert '春望 "Spring View" & more' in shown
    assert CHUN_WANG in shown


def test_html_is_self_contained_and_printable(items) -> None:
    markup = anthology_html(items, title="Tang poems")
    assert not re.search(r"(src|href)\s*=\s*\"(?!#)", markup)  # nothing fetched, no link out
    assert "@import" not in markup and "url(" not in markup
    meta = Page(markup).all("meta", **{"http-equiv": "Content-Security-Policy"})
    assert meta and "default-src 'none'" in (meta[0]["content"] or "")
    print_rules = markup[markup.index("@media print") :]
    assert re.search(r"article\.poem \{ break-before: page; break-inside: avoid;", print_rules)
    assert ".cover { break-after: page; }" in print_rules


def md_page(markdown: str) -> Page:
    return Page(MarkdownIt("commonmark", {"html": True}).render(markdown))


def test_markdown_has_contents_source_then_translation_and_the_missing(items) -> None:
    md = anthology_markdown(items, title="Tang poems")
    page = md_page(md)
    targets = [a["id"] for a in page.all("a") if "id" in a]
    links = [a["href"] for a in page.all("a") if "href" in a]
    assert links == [f"#{t}" for t in targets] == [f"#poem-{i.name}" for i in items]
    shown = page.shown()
    li_bai = items[0].output
    assert li_bai is not None
    source_at = shown.index("床前明月光，")
    assert shown.index("Original (Chinese)") < source_at < shown.index("Translation (English)")
    assert shown.index("Translation (English)") < shown.index(li_bai.final.translation[:20])
    for line in li_bai.final.translation.splitlines():
        assert line in shown
    assert status_text(items[2]) in shown and "Not translated: the job was cancelled" in shown
    assert "(failed)" in shown and "(cancelled)" in shown  # in the contents


def test_markdown_shows_hostile_text_and_renders_none_of_it(items) -> None:
    page = md_page(anthology_markdown(items, title=f"Poems {SCRIPT}"))
    assert {t for t, _ in page.tags} <= MD_TAGS
    assert all(set(attrs) <= {"id", "href"} for t, attrs in page.tags if t == "a")
    assert all(attrs == {} for t, attrs in page.tags if t != "a")
    shown = page.shown()
    for text in (f"Poems {SCRIPT}", HOSTILE_TITLE, HOSTILE_POET, SCRIPT, "<b>bad key</b>"):
        assert text in shown, text


def test_a_poem_name_is_safe_for_a_file_name_and_an_anchor() -> None:
    fields = {"where": "w", "request": request(JING_YE_SI), "status": "failed"}
    for good in ("li-bai", "静夜思", "poem_01.v2"):
        assert AnthologyItem(name=good, **fields).name == good
    for bad in ("", "../x", "a/b", ".hidden", "a b", "a\n", '"><script>', "x" * 121):
        with pytest.raises(ValidationError):
            AnthologyItem(name=bad, **fields)


def test_the_tally_and_a_poem_not_finished_yet() -> None:
    waiting = not_translated(
        "fog", "running", None, request(FOG, source_lang="en", target_lang="zh-CN")
    )
    other = not_translated("moon", "queued", None, request(JING_YE_SI))
    assert tally([waiting, other]) == "2 poems: 0 translated, 1 queued, 1 running."
    assert tally([other]) == "1 poem from Chinese into English: 0 translated, 1 queued."
    assert status_text(waiting) == "Not translated yet: the job is running"
    gone = other.model_copy(update={"status": "succeeded", "error": "result expired"})
    assert status_text(gone) == "Translated, but its result is no longer available: result expired"
    assert "Not translated yet" in anthology_html([waiting], title="")
    assert anthology_markdown([], title="").startswith("# Anthology\n\n0 poems: 0 translated.")
