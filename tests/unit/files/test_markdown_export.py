"""The Markdown export shows model and user text, never runs it (issue 21, point 11).

Every text a model or a submitter wrote is given a payload; the export is then
rendered by a real Markdown library with raw HTML enabled, as a permissive viewer
would, and the HTML is checked tag by tag. The poem must still read as a poem.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from tests.helpers.poems import FOG_WITH_MARKUP as POEM
from vpsweb.config import load_config
from vpsweb.domain.models import (
    CandidateResult,
    EditorReview,
    EvaluationResult,
    FinalTranslation,
    GateResult,
    Judgement,
    Revision,
    RevisionCheck,
    StrategyDials,
    WorkflowMode,
)
from vpsweb.domain.plan import validate_request
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.markdown_escape import inline, prose, verse
from vpsweb.files.output import to_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<a href=javascript:alert(1)>x</a>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",  # entities must not decode into a tag
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    "```\n<script>alert(2)</script>\n```",  # a fence in the text must not open one
]
HOSTILE = " ".join(PAYLOADS)
# What a rendering may contain: Markdown's own structure, nothing a model chose.
ALLOWED_TAGS = {
    *("p", "br", "em", "strong", "h1", "h2", "h3", "ul", "ol", "li", "blockquote"),
    *("pre", "code", "table", "thead", "tbody", "tr", "th", "td", "hr"),
}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def rendered(markdown: str) -> Tags:
    """As a viewer that renders raw HTML would show it."""
    parser = Tags()
    parser.feed(MarkdownIt("commonmark", {"html": True}).render(markdown))
    return parser


def assert_inert(markdown: str) -> None:
    tags = rendered(markdown).tags
    assert sorted({t for t, _ in tags} - ALLOWED_TAGS) == []
    attrs = [(t, a) for t, attrs in tags for a in attrs]
    assert [(t, a) for t, a in attrs if not (t == "code" and a[0] == "class")] == []


def hostile_output() -> TranslationOutput:
    cfg = load_config()
    request = validate_request(
        {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN", "title": "Fog"}, cfg
    )
    chosen = CandidateResult(
        index=0,
        variant="literal",
        status="succeeded",
        translated_title=f"雾 {PAYLOADS[1]}",
        translated_poet=PAYLOADS[0],
        translation=f"雾来了\n{HOSTILE}\n\n它坐着",
        notes=f"notes {HOSTILE}\n[x]: javascript:alert(3)",
    )
    failed = CandidateResult(
        index=1, variant="lyric", status="failed", error=f"HTTP 500: {HOSTILE}\n(the answer"
    )
    return TranslationOutput(
        job_id="0123456789ab",
        request=request,
        workflow_mode=WorkflowMode.HYBRID,
        parallel_count=2,
        strategy=StrategyDials(),
        candidates=[chosen, failed],
        evaluation=EvaluationResult(
            selected_index=0,
            rationale=f"rationale {HOSTILE}",
            method="judge",
            presented_order=[0],
            judgements=[Judgement(order=[0], error=f"judge failed: {HOSTILE}")],
            gated=[GateResult(index=1, reasons=[f"leaks {PAYLOADS[1]}"])],
        ),
        selected_candidate=chosen,
        editor_review=EditorReview(suggestions=f"1. [L1] {HOSTILE}"),
        revision=Revision(translation=f"修订\n{HOSTILE}", notes=f"revised {HOSTILE}"),
        revision_check=RevisionCheck(
            decision="revision_rejected", reason=f"lost: {HOSTILE}", preferred=["candidate"]
        ),
        final=FinalTranslation(
            translation=chosen.translation,
            translated_title=chosen.translated_title,
            translated_poet=chosen.translated_poet,
            source="candidate",
            candidate_index=0,
        ),
        created_at=datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC),
        finished_at=datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC),
    )


def test_no_model_or_user_text_survives_as_html_in_the_export() -> None:
    md = to_markdown(hostile_output())
    lowered = md.lower()
    for tag in ("<script", "<img", "<iframe", "<a ", "<javascript"):
        assert tag not in lowered, tag
    assert_inert(md)
    shown = "".join(rendered(md).text)
    assert "<script>alert(1)</script>" in shown  # shown as text, for the reader to see
    assert "javascript:alert(1)" in shown


def test_reasoning_in_the_export_is_inert_too() -> None:
    out = hostile_output()
    out.selected_candidate.reasoning = HOSTILE
    out.candidates[0].reasoning = HOSTILE
    assert_inert(to_markdown(out))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_escape_is_inert_alone(payload: str) -> None:
    assert_inert(prose(payload))
    assert_inert("# " + inline(payload))
    assert_inert("\n".join(verse(payload)))


VERSES = [
    "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。",
    "# not a heading\n- not a list\n1. not numbered\n> not quoted\n---",
    "*stars* and _lines_ & `ticks` [L1] ~struck~ | pipe \\ back",
    "  indented\n        deeper\n\n    a stanza that starts indented",
    "=====\nbelow a rule",
]


@pytest.mark.parametrize("poem", VERSES)
def test_a_poem_renders_as_written_line_by_line(poem: str) -> None:
    markdown = "\n".join(verse(poem))
    out = MarkdownIt("commonmark", {"html": True}).render(markdown)
    stanzas = out.strip().split("\n<p>")
    # One paragraph per stanza, a <br /> per line break, the text exactly the poem's.
    assert len(stanzas) == poem.count("\n\n") + 1
    parser = Tags()
    parser.feed(out)
    assert {t for t, _ in parser.tags} <= {"p", "br"}
    text = html.unescape("".join(parser.text)).replace("\u00a0", " ")
    assert [line for line in text.splitlines() if line] == [
        line.rstrip() for line in poem.splitlines() if line.strip()
    ]
