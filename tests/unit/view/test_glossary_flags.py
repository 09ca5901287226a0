"""Glossary flags wherever a job is shown: the live view (from the events), the CLI's
plain lines and report, the web page's result and the Markdown file. A flagged
candidate keeps its status (it was judged) and says its flag beside it (⚑)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.helpers.config import make_config_dir, use_models, variant_on
from tests.helpers.poems import JING_YE_SI
from tests.helpers.sim_llm import SimLLM
from vpsweb.cli.live import PlainView
from vpsweb.cli.report import print_result
from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.domain.progress import EventKind, ProgressEvent, flagged_field
from vpsweb.domain.result import TranslationOutput
from vpsweb.domain.runner import run_job
from vpsweb.files.output import to_markdown
from vpsweb.view import JobView, ResultView
from vpsweb.view.marks import candidate_label
from vpsweb.web import views

RAW = 'glossary: "明月" should be "bright moon" (left untranslated)'
MISS = 'glossary: "明月" should be "bright moon" (translated otherwise)'


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> TranslationOutput:
    """Candidate 1 leaves the term untranslated; the reviser translates it otherwise."""

    def edit(d: dict[str, Any]) -> None:
        variant_on(1, "sim-glossraw")(d)
        use_models(d, translator_revision="sim-glossmiss")

    cfg = load_config(make_config_dir(tmp_path_factory.mktemp("flags"), pipeline_edit=edit))
    request = {
        "poem": JING_YE_SI,
        "source_lang": "zh-CN",
        "target_lang": "en",
        "parallel_count": 3,
        "glossary": {"terms": {"明月": "bright moon"}},
    }
    plan = build_plan(request, cfg, job_id="0123456789ab", offline=True)
    return run_job(plan, cfg, SimLLM(cfg))


def test_the_label_keeps_the_status_and_adds_the_flag() -> None:
    assert candidate_label("succeeded", "", RAW) == f"✓ succeeded ⚑ {RAW}"
    assert candidate_label("succeeded") == "✓ succeeded"


def test_the_result_view_and_the_cli_report(output: TranslationOutput) -> None:
    view = ResultView.of(output)
    assert {(f.where, f.message) for f in view.flags} == {("candidate #1", RAW), ("revision", MISS)}
    finals = [f.final for f in view.flags]
    assert finals == sorted(finals, reverse=True)  # the final translation's first
    flagged = view.candidates[1]
    assert flagged.status == "succeeded" and flagged.label == f"✓ succeeded ⚑ {RAW}"
    out = io.StringIO()
    print_result(output, out)
    said = out.getvalue()
    assert "FLAG (glossary) candidate #1" in said and RAW in said
    assert "FLAG (glossary) revision" in said and MISS in said
    assert f"#1 {flagged.variant}: ✓ succeeded ⚑ {RAW}" in said


def test_the_web_result_and_the_markdown(output: TranslationOutput) -> None:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vpsweb.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    page = env.get_template("result.html").render(**views.result_context(output))
    assert 'class="warn result-flags"' in page and "⚑ Flag (glossary), candidate #1" in page
    assert "&#34;明月&#34; should be &#34;bright moon&#34; (left untranslated)" in page
    md = to_markdown(output)
    assert f"- Candidate #1 was flagged: {RAW}." in md.replace("\\", "")
    assert f"**Flag:** the revision: {MISS}." in md.replace("\\", "")
    final = [f for f in output.flags if f.final]
    assert all(f"**Flag (glossary):** {f.message}." in md.replace("\\", "") for f in final)


def test_the_live_view_and_the_plain_lines_from_the_events(output: TranslationOutput) -> None:
    plan = build_plan(
        {"poem": JING_YE_SI, "source_lang": "zh-CN", "target_lang": "en", "parallel_count": 3},
        load_config(),
        job_id="0123456789ab",
    )
    state = JobView.of("0123456789ab", plan)
    plain = PlainView(state, io.StringIO())
    lines = []
    for stage, out in (
        ("Translation Evaluation", output.evaluation),
        ("Revision Check", output.revision_check),
    ):
        fields = {"stage": stage, "status": "completed", "flagged": flagged_field(out)}
        event = ProgressEvent.from_fields("1-0", {"event": "stage_completed", **fields})
        assert event.event is EventKind.STAGE_COMPLETED
        state.apply(event)
        lines.append(plain.line(event) or "")
    row = state.candidate(1)
    assert row is not None and row.flag == RAW and row.label.endswith(f"⚑ {RAW}")
    assert state.flags == [f"candidate #1: {RAW}", f"revision: {MISS}"]
    assert state.model_dump(mode="json")["flags"] == state.flags  # what the page draws
    assert f"⚑ candidate 1 flagged: {RAW}" in lines[0]
    assert f"⚑ the revision flagged: {MISS}" in lines[1]


def test_the_job_page_script_draws_the_flags() -> None:
    script = Path(views.__file__).with_name("static").joinpath("job.js").read_text()
    assert "drawFlags(view.flags" in script
    page = Path(views.__file__).with_name("templates").joinpath("job.html").read_text()
    assert 'id="flags"' in page
