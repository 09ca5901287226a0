"""Saving a TranslationOutput as JSON and Markdown with readable file names."""

from __future__ import annotations

import re
from pathlib import Path

from vpsweb.languages import language_name
from vpsweb.models import TranslationOutput

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


def to_markdown(output: TranslationOutput) -> str:
    req = output.request
    ev = output.evaluation
    rev = output.revision
    t = output.totals
    lines = [
        f"# {rev.translated_title or req.title or 'Untitled'}",
        "",
        f"*{rev.translated_poet or req.author}* — translated from "
        f"{language_name(req.source_lang)} into {language_name(req.target_lang)} "
        f"(mode {output.workflow_mode.value}, {output.parallel_count} candidate(s), "
        f"job `{output.job_id}`)",
        "",
        "## Final translation",
        "",
        "```text",
        rev.translation,
        "```",
        "",
        "## Original",
        "",
        "```text",
        req.poem.strip("\n"),
        "```",
        "",
        "## Candidates",
        "",
    ]
    for c in output.candidates:
        mark = " (selected)" if c.index == ev.selected_index else ""
        if c.ok:
            lines += [
                f"### Candidate {c.index} — {c.variant}{mark}",
                "",
                "```text",
                c.translation,
                "```",
                "",
                c.notes,
                "",
            ]
        else:
            lines += [f"### Candidate {c.index} — {c.variant}: failed", "", f"> {c.error}", ""]
    lines += [
        "## Evaluation",
        "",
        f"Selected candidate {ev.selected_index} (method: {ev.method}). The judge saw the "
        "candidates shuffled, numbered "
        + ", ".join(f"{pid} = candidate {idx}" for pid, idx in enumerate(ev.presented_order, 1))
        + "; its rationale uses those numbers.",
        "",
        ev.rationale,
        "",
    ]
    if ev.scores:
        lines += ["| candidate | scores | total |", "|---|---|---|"]
        for s in ev.scores:
            detail = ", ".join(f"{k} {v:g}" for k, v in s.scores.items())
            lines.append(f"| {s.index} | {detail} | {s.total if s.total is not None else ''} |")
        lines.append("")
    lines += [
        "## Editor review",
        "",
        output.editor_review.suggestions,
        "",
        "## Revision notes",
        "",
        rev.notes,
        "",
        "## Totals",
        "",
        f"- LLM calls: {t.llm_calls}",
        f"- tokens: {t.total_tokens} ({t.prompt_tokens} prompt + {t.completion_tokens} completion)",
        f"- cost: {format_cost(t.cost)}",
        f"- duration: {t.duration_s:.1f} s",
        "",
    ]
    return "\n".join(lines)


def save_output(output: TranslationOutput, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = file_stem(output)
    json_path = directory / f"{stem}.json"
    md_path = directory / f"{stem}.md"
    json_path.write_text(output.model_dump_json(indent=2), encoding="utf-8")
    md_path.write_text(to_markdown(output), encoding="utf-8")
    return json_path, md_path
