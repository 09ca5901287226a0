"""The glossary in the stages: its "Required terms" block in every translation and
revision prompt (whatever the templates say), and its gate on every candidate and
the revision (``flag``: judged and flagged; ``strict``: gated before judging). Whole
jobs run in process with the simulator's own answers (``SimLLM``), misses planted by
the simulator's model-name directives (``sim-glossmiss``, ``sim-glossraw``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import make_config_dir, use_models, variant_on
from tests.helpers.poems import FOG, JING_YE_SI
from tests.helpers.scripted_llm import ScriptedLLM, ctx_for
from tests.helpers.sim_llm import SimLLM
from tests.helpers.stage_calls import translate_candidate
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.manual_answers import ManualLLM
from vpsweb.domain.models import GateResult
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.result import TranslationOutput
from vpsweb.domain.runner import run_job
from vpsweb.errors import AwaitingAnswer, PermanentLLMError, StageFailed

TERMS = {"明月": "bright moon", "故乡": {"target": "hometown", "note": "the poet's home"}}
BLOCK_END = '- "故乡" → "hometown" (in the poem) — the poet\'s home\n</required_terms>'
# A directive in the model's name misses every term: both of the poem's.
MISSES = [
    'glossary: "明月" should be "bright moon" (translated otherwise)',
    'glossary: "故乡" should be "hometown" (translated otherwise)',
]
RAWS = [m.replace("translated otherwise", "left untranslated") for m in MISSES]

Edit = Callable[[dict[str, Any]], None]


def _config(tmp: Path, edit: Edit | None = None) -> AppConfig:
    return load_config(make_config_dir(tmp, pipeline_edit=edit))


def _plan(cfg: AppConfig, mode: str = "flag", **changes: Any) -> JobPlan:
    data: dict[str, Any] = {
        "poem": JING_YE_SI,
        "source_lang": "zh-CN",
        "target_lang": "en",
        "title": "静夜思",
        "author": "李白",
        "parallel_count": 3,
        "glossary": {"terms": TERMS, "mode": mode},
        **changes,
    }
    return build_plan(data, cfg, job_id="0123456789ab", offline=True)


def _run(cfg: AppConfig, plan: JobPlan) -> tuple[TranslationOutput, SimLLM]:
    llm = SimLLM(cfg)
    return run_job(plan, cfg, llm), llm


# --- rendering ---------------------------------------------------------------------------


def test_the_block_ends_every_translation_and_revision_prompt_and_is_honoured(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path)
    out, llm = _run(cfg, _plan(cfg))
    translating = llm.prompts("initial_translation") + llm.prompts("translator_revision")
    assert len(translating) == 4 and all(p.endswith(BLOCK_END) for p in translating)
    for step in ("evaluation", "editor_review", "revision_check"):
        assert all("<required_terms>" not in p for p in llm.prompts(step)), step
    # The simulator writes each required target where its source is: no flags.
    assert out.flags == [] and out.evaluation.flagged == [] and out.evaluation.gated == []
    assert out.revision_check.flags == []
    assert all("bright moon" in c.translation for c in out.candidates)
    assert "hometown" in out.final.translation


def test_no_block_without_a_glossary_or_when_no_term_occurs(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    for plan in (
        _plan(cfg, glossary=None),
        _plan(cfg, poem=FOG, source_lang="en", target_lang="zh-CN"),
    ):
        _, llm = _run(cfg, plan)
        assert all("Required terms" not in p for p in llm.prompts("initial_translation"))


def test_a_prompt_file_without_the_block_still_gets_it(tmp_path: Path) -> None:
    """An operator's own prompts know nothing of glossaries: the block is appended."""
    root = make_config_dir(tmp_path)
    (root / "prompts" / "initial_translation.yaml").write_text(
        "system: Translate poems.\n"
        "user: '<original_poem>{{ original_poem }}</original_poem> <initial_translation>'\n",
        encoding="utf-8",
    )
    cfg = load_config(root)
    llm = ScriptedLLM("<initial_translation>x</initial_translation>")
    translate_candidate(ctx_for(cfg, _plan(cfg), llm), 0)
    assert llm.user().startswith("<original_poem>床前") and llm.user().endswith(BLOCK_END)


def test_a_fallback_model_gets_the_block_too(tmp_path: Path) -> None:
    def fallback(d: dict[str, Any]) -> None:
        d["modes"]["hybrid"]["steps"]["initial_translation"]["fallback"] = ["deepseek-reasoner"]

    cfg = _config(tmp_path, fallback)
    gone = PermanentLLMError("HTTP 404: model not found", status=404, attempts=1)
    llm = ScriptedLLM(gone, "<initial_translation>bright moon, hometown</initial_translation>")
    result = translate_candidate(ctx_for(cfg, _plan(cfg), llm), 0)
    assert result.ok and result.metrics is not None and result.metrics.fallback_from
    assert [llm.user(i).endswith(BLOCK_END) for i in (0, 1)] == [True, True]


# --- the gate on candidates -----------------------------------------------------------------


def test_flag_mode_judges_a_candidate_with_a_miss_and_flags_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, variant_on(1, "sim-glossraw"))
    out, _ = _run(cfg, _plan(cfg, "flag"))
    ev = out.evaluation
    assert ev.gated == [] and ev.flagged == [GateResult(index=1, reasons=RAWS)]
    assert all(1 in j.order for j in ev.judgements)  # judged as usual
    assert [(f.where, f.index, f.message) for f in out.flags] == [
        ("candidate #1", 1, RAWS[0]),
        ("candidate #1", 1, RAWS[1]),
    ]
    assert out.flags[0].final == (out.final.source == "candidate" and ev.selected_index == 1)
    assert "明月" in out.candidates[1].translation  # left as it was


def test_strict_mode_gates_a_candidate_with_a_miss_before_judging(tmp_path: Path) -> None:
    cfg = _config(tmp_path, variant_on(1, "sim-glossmiss"))
    out, _ = _run(cfg, _plan(cfg, "strict"))
    ev = out.evaluation
    assert [(g.index, g.reasons) for g in ev.gated] == [(1, MISSES)]
    assert ev.flagged == [] and out.flags == []
    assert all(1 not in j.order for j in ev.judgements) and ev.selected_index != 1


def test_strict_mode_with_every_candidate_missing_fails_as_all_gated(tmp_path: Path) -> None:
    def all_miss(d: dict[str, Any]) -> None:
        use_models(d, initial_translation="sim-glossmiss")

    cfg = _config(tmp_path, all_miss)
    with pytest.raises(StageFailed) as failed:
        _run(cfg, _plan(cfg, "strict"))
    assert failed.value.display_name == "Translation Evaluation"
    assert "no candidate passed the checks before judging" in str(failed.value)
    assert f"candidate 0: {', '.join(MISSES)}" in str(failed.value)


def test_latin_terms_into_chinese(tmp_path: Path) -> None:
    cfg = _config(tmp_path, variant_on(0, "sim-glossraw"))
    plan = _plan(
        cfg,
        poem=FOG,
        source_lang="en",
        target_lang="zh-CN",
        title="Fog",
        author="Carl Sandburg",
        glossary={"terms": {"Fog": "雾", "harbor": "港湾"}},
    )
    out, llm = _run(cfg, plan)
    assert '- "Fog" → "雾" (in the poem, the title)' in llm.prompts("initial_translation")[0]
    assert [(f.where, f.message) for f in out.flags] == [
        ("candidate #0", 'glossary: "Fog" should be "雾" (left untranslated)'),
        ("candidate #0", 'glossary: "Fog" should be "雾" in the title (left untranslated)'),
        ("candidate #0", 'glossary: "harbor" should be "港湾" (left untranslated)'),
    ]
    assert all("雾" in c.translation and "雾" in c.translated_title for c in out.candidates[1:])


# --- the revision ------------------------------------------------------------------------


def _reviser_misses(d: dict[str, Any]) -> None:
    use_models(d, translator_revision="sim-glossmiss")


def test_a_revision_with_a_miss_is_flagged_and_judged_in_flag_mode(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _reviser_misses)
    out, llm = _run(cfg, _plan(cfg, "flag"))
    check = out.revision_check
    assert check.flags == MISSES and check.gate_reasons == []
    assert len(llm.prompts("revision_check")) == 2  # judged in both orders as usual
    kept = out.final.source == "revision"
    assert [(f.where, f.index, f.final) for f in out.flags] == [("revision", -1, kept)] * 2


def test_a_revision_with_a_miss_is_rejected_in_strict_mode(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _reviser_misses)
    out, llm = _run(cfg, _plan(cfg, "strict"))
    check = out.revision_check
    assert check.decision == "revision_rejected" and check.gate_reasons == MISSES
    assert check.flags == MISSES and llm.prompts("revision_check") == []
    assert out.final.source == "candidate" and "bright moon" in out.final.translation
    assert [(f.where, f.final) for f in out.flags] == [("revision", False)] * 2


def test_manual_mode_shows_the_same_prompt(tmp_path: Path) -> None:
    """A person answering by hand is asked what a model would be: the block included."""
    cfg = _config(tmp_path)
    with pytest.raises(AwaitingAnswer) as parked:
        translate_candidate(ctx_for(cfg, _plan(cfg), ManualLLM(None)), 0)  # type: ignore[arg-type]
    assert parked.value.messages[-1]["content"].endswith(BLOCK_END)
