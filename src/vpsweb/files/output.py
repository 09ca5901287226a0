"""Saving a TranslationOutput as JSON and Markdown with readable file names."""

from __future__ import annotations

import re
from pathlib import Path

from vpsweb.domain.languages import language_name
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.markdown_escape import inline, verse
from vpsweb.files.sections import SECTIONS
from vpsweb.stages.table import STAGES

_UNSAFE = re.compile(r"[^\w\-]+", re.UNICODE)


def _slug(text: str, fallback: str) -> str:
    slug = _UNSAFE.sub("-", text.strip()).strip("-_").lower()
    return slug[:40] or fallback


def file_stem(output: TranslationOutput) -> str:
    """poet_title_src_tgt_mode_timestamp_id, e.g. carl-sandburg_fog_en_zh-CN_hybrid_..."""
    req = output.request
    stamp = output.finished_at.strftime("%Y%m%d-%H%M%S")
    parts = [
        _slug(req.author, "unknown-poet"),
        _slug(req.title, "untitled"),
        req.source_lang,
        req.target_lang,
        output.workflow_mode.value,
        stamp,
        output.job_id,
    ]
    return "_".join(parts)


def format_cost(cost: dict[str, float]) -> str:
    if not cost:
        return "0"
    return ", ".join(f"{amount:.6f} {currency}" for currency, amount in sorted(cost.items()))


def _header(output: TranslationOutput) -> list[str]:
    req, rev = output.request, output.final
    kept = (
        "the revision (it won the revision check)"
        if rev.source == "revision"
        else f"candidate {rev.candidate_index} (the revision check kept it over the revision)"
    )
    return [
        f"# {inline(rev.translated_title or req.title or 'Untitled')}",
        "",
        f"*{inline(rev.translated_poet or req.author)}* — translated from "
        f"{language_name(req.source_lang)} into {language_name(req.target_lang, target=True)} "
        f"(mode {output.workflow_mode.value}, {output.parallel_count} candidate(s), "
        f"job `{output.job_id}`)",
        "",
        *(
            [
                f"Answered by hand (model `manual`): {', '.join(output.manual_steps)}.",
                "",
            ]
            if output.manual_steps
            else []
        ),
        *_fallbacks(output),
        *_final_flags(output),
        "## Final translation",
        "",
        f"This is {kept}.",
        "",
        *verse(rev.translation),
        "",
        "## Original",
        "",
        *verse(req.poem),
        "",
    ]


def _fallbacks(output: TranslationOutput) -> list[str]:
    """Steps a fallback model answered: which, instead of which model, and why."""
    found = [w for w in output.warnings if w.kind == "model_fallback"]
    lines = [f"**Warning ({inline(w.stage)}):** {inline(w.message)}." for w in found]
    return [*lines, ""] if lines else []


def _final_flags(output: TranslationOutput) -> list[str]:
    """What the delivered translation was flagged for (glossary terms it misses)."""
    lines = [f"**Flag ({f.kind}):** {inline(f.message)}." for f in output.flags if f.final]
    return [*lines, ""] if lines else []


def _totals(output: TranslationOutput) -> list[str]:
    t = output.totals
    return [
        "## Totals",
        "",
        f"- LLM calls: {t.llm_calls}",
        f"- tokens: {t.total_tokens} ({t.prompt_tokens} prompt + {t.completion_tokens} completion)",
        f"- cost: {format_cost(t.cost)}",
        f"- duration: {t.duration_s:.1f} s",
        "",
    ]


def to_markdown(output: TranslationOutput) -> str:
    """The job's header and final text, one section per stage (from the stage table),
    then the totals. Every model or user text in it goes through ``markdown_escape``: the
    file is opened in viewers that render HTML."""
    lines = _header(output)
    for s in STAGES:
        lines += SECTIONS[s.name](output)
    lines += _totals(output)
    return "\n".join(lines)


def save_output(output: TranslationOutput, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = file_stem(output)
    json_path = directory / f"{stem}.json"
    md_path = directory / f"{stem}.md"
    json_path.write_text(output.model_dump_json(indent=2), encoding="utf-8")
    md_path.write_text(to_markdown(output), encoding="utf-8")
    return json_path, md_path
