"""What the CLI prints about a job at rest: its status snapshot and its result."""

from __future__ import annotations

from typing import TextIO

from vpsweb.domain import reasoning
from vpsweb.domain.progress import ProgressSnapshot
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.output import format_cost
from vpsweb.storage import JobRecord

BAR_WIDTH = 30


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    filled = round(width * min(max(percent, 0.0), 100.0) / 100)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {percent:5.1f}%"


def print_status(record: JobRecord, snap: ProgressSnapshot, out: TextIO) -> None:
    p = record.plan
    out.write(
        f"job {record.job_id}: {record.status.value}\n"
        f"  {bar(snap.progress_percent)}  stage: {snap.stage or '-'} ({snap.status})\n"
        f"  mode {p.workflow_mode.value}, {p.parallel_count} candidate(s), "
        f"{p.request.source_lang} -> {p.request.target_lang}"
        f"{', offline' if p.offline else ''}\n"
    )
    if snap.parallel_progress:
        out.write(
            f"  candidates: {snap.parallel_progress} ({snap.successful} ok, {snap.failed} failed)\n"
        )
    if snap.message:
        out.write(f"  last: {snap.message}\n")
    if record.error:
        out.write(f"  error ({record.error_stage}): {record.error}\n")


def _reasoning(output: TranslationOutput, out: TextIO) -> None:
    """Reasoning models' thinking, one short line each: the whole is in the saved files."""
    found = [(f"candidate #{c.index}", c.reasoning) for c in output.candidates]
    found += [
        ("judge", output.evaluation.reasoning),
        ("editor", output.editor_review.reasoning),
        ("revision", output.revision.reasoning),
    ]
    found = [(who, text) for who, text in found if text]
    if found:
        out.write("Reasoning (in full in the saved JSON and Markdown):\n")
        for who, text in found:
            out.write(f"  {who}: {reasoning.short(text)}\n")


def print_result(output: TranslationOutput, out: TextIO) -> None:
    ev = output.evaluation
    chosen = output.selected_candidate
    t = output.totals
    suggestions = output.editor_review.suggestions.strip().splitlines()
    summary = "\n".join(f"    {line}" for line in suggestions[:6])
    if len(suggestions) > 6:
        summary += f"\n    ... ({len(suggestions) - 6} more lines in the saved files)"
    failed = [c for c in output.candidates if c.status == "failed"]
    late = [f"#{c.index} ({c.variant})" for c in output.candidates if c.status == "late"]
    for w in output.warnings:
        out.write(f"\nWARNING ({w.kind}): {w.message}.")
    out.write(
        f"\nChosen candidate: #{chosen.index} ({chosen.variant}), "
        f"method {ev.method}, of {len(output.candidates)}"
    )
    out.write(f" ({len(failed)} failed)\n" if failed else "\n")
    if late:
        out.write(f"  late (stopped by the straggler policy, not judged): {', '.join(late)}\n")
    if ev.gated:
        for g in ev.gated:
            out.write(f"  candidate #{g.index} not judged: {'; '.join(g.reasons)}\n")
    if ev.agreement is not None:
        low = "  LOW: the verdict depended on the order" if ev.low_agreement else ""
        out.write(
            f"Judge asked in {len(ev.judgements)} orders; agreement {ev.agreement:.0%}{low}\n"
        )
    out.write(f"Rationale: {ev.rationale.strip()}\n")
    if ev.judged and len(ev.presented_order) > 1:
        # The judge numbered candidates in its shuffled order; its references above
        # were renumbered, and the mapping is there for whoever checks.
        seen = ", ".join(f"{pid}=#{idx}" for pid, idx in enumerate(ev.presented_order, 1))
        out.write(f"  (the judge saw them shuffled as {seen}; renumbered above)\n")
    _reasoning(output, out)
    out.write("\n")
    out.write(f"Editor's suggestions:\n{summary}\n\n")
    final, check = output.final, output.revision_check
    out.write(f"Revision check: {check.decision} — {check.reason}\n\n")
    if final.source == "candidate":
        out.write("Revision (not kept):\n\n" + output.revision.translation.strip() + "\n\n")
    title = final.translated_title
    which = "the revision" if final.source == "revision" else f"candidate #{final.candidate_index}"
    out.write(f"Final translation ({which}){f' — {title}' if title else ''}:\n\n")
    out.write(final.translation.strip() + "\n\n")
    out.write(
        f"Totals: {t.llm_calls} LLM calls, {t.total_tokens} tokens "
        f"({t.prompt_tokens} prompt + {t.completion_tokens} completion), "
        f"cost {format_cost(t.cost)}, {t.duration_s:.1f} s\n"
    )
