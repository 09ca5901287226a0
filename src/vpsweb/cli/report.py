"""What the CLI prints about a job at rest: its status snapshot and its result (drawn
from ``vpsweb.view.ResultView``, as the web page's result is)."""

from __future__ import annotations

from typing import TextIO

from vpsweb.domain import reasoning
from vpsweb.domain.progress import ProgressSnapshot
from vpsweb.domain.result import TranslationOutput
from vpsweb.storage import JobRecord
from vpsweb.view import ResultView

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


def _reasoning(view: ResultView, out: TextIO) -> None:
    """Reasoning models' thinking, one short line each: the whole is in the saved files."""
    if view.reasoning:
        out.write("Reasoning (in full in the saved JSON and Markdown):\n")
        for who, text in view.reasoning:
            out.write(f"  {who}: {reasoning.short(text)}\n")


def _candidates(view: ResultView, out: TextIO) -> None:
    """Each candidate as every display labels it: succeeded, late, gated or failed."""
    for c in view.candidates:
        chosen = "  <- chosen" if c.chosen else ""
        out.write(f"  #{c.index} {c.variant}: {c.label}{chosen}\n")


def _judge(view: ResultView, out: TextIO) -> None:
    judge = view.judge
    if judge.agreement is not None:
        low = "  LOW: the verdict depended on the order" if judge.low_agreement else ""
        out.write(f"Judge asked in {judge.orders} orders; agreement {judge.agreement:.0%}{low}\n")
    out.write(f"Rationale: {judge.rationale}\n")
    if judge.shuffled:
        # The judge numbered candidates in its shuffled order; its references above
        # were renumbered, and the mapping is there for whoever checks.
        seen = ", ".join(f"{pid}=#{idx}" for pid, idx in judge.shuffled)
        out.write(f"  (the judge saw them shuffled as {seen}; renumbered above)\n")


def print_result(output: TranslationOutput, out: TextIO) -> None:
    view = ResultView.of(output)
    chosen = view.chosen
    suggestions = view.suggestions.splitlines()
    summary = "\n".join(f"    {line}" for line in suggestions[:6])
    if len(suggestions) > 6:
        summary += f"\n    ... ({len(suggestions) - 6} more lines in the saved files)"
    for w in view.warnings:
        out.write(f"\nWARNING ({w.kind}): {w.message}.")
    for f in view.flags:
        final = " (the final translation)" if f.final else ""
        out.write(f"\nFLAG ({f.kind}) {f.where}{final}: {f.message}")
    out.write(
        f"\nChosen candidate: #{chosen.index} ({chosen.variant}), "
        f"method {view.judge.method}, of {len(view.candidates)}"
    )
    out.write(f" ({view.failed} failed)\n" if view.failed else "\n")
    _candidates(view, out)
    _judge(view, out)
    _reasoning(view, out)
    out.write("\n")
    out.write(f"Editor's suggestions:\n{summary}\n\n")
    out.write(f"Revision check: {view.check_decision} — {view.check_reason}\n\n")
    if view.revision_not_kept:
        out.write("Revision (not kept):\n\n" + view.revision_not_kept + "\n\n")
    title = f" — {view.final_title}" if view.final_title else ""
    out.write(f"Final translation ({view.final_which}){title}:\n\n")
    out.write(view.final_translation + "\n\n")
    out.write(
        f"Totals: {view.llm_calls} LLM calls, {view.total_tokens} tokens "
        f"({view.prompt_tokens} prompt + {view.completion_tokens} completion), "
        f"cost {view.cost}, {view.duration_s:.1f} s\n"
    )
