"""The Markdown output's section for each stage, keyed by the stage table's names.

Display only: each section reads the stage's output from the finished
``TranslationOutput``; ``files.output`` writes them in table order.
"""

from __future__ import annotations

from collections.abc import Callable

from vpsweb.domain import reasoning
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.markdown_escape import inline, prose, verse


def candidates(output: TranslationOutput) -> list[str]:
    lines = ["## Candidates", ""]
    for c in output.candidates:
        mark = " (selected)" if c.index == output.evaluation.selected_index else ""
        if c.ok:
            lines += [f"### Candidate #{c.index} — {c.variant}{mark}", ""]
            lines += [*verse(c.translation), "", prose(c.notes), ""]
            lines += reasoning.markdown("The translator's reasoning", c.reasoning)
        else:
            lines += [f"### Candidate #{c.index} — {c.variant}: {c.status}", ""]
            lines += [f"> {inline(c.error or '')}", ""]
    return lines


def evaluation(output: TranslationOutput) -> list[str]:
    ev = output.evaluation
    mapping = ", ".join(f"{pid} = #{idx}" for pid, idx in enumerate(ev.presented_order, 1))
    lines = [
        "## Evaluation",
        "",
        f"Selected candidate #{ev.selected_index} (method: {ev.method}).",
        "",
        *(f"**Warning:** {inline(w.message)}." for w in ev.warnings),
        *([""] if ev.warnings else []),
    ]
    if ev.judgements:
        lines += [f"The judge was asked {len(ev.judgements)} time(s), in these orders:", ""]
        for k, j in enumerate(ev.judgements, 1):
            verdict = f"chose #{j.selected_index}" if j.error is None else inline(j.error)
            lines.append(f"{k}. candidates {', '.join(f'#{i}' for i in j.order)}: {verdict}")
        lines.append("")
    if ev.agreement is not None:
        flag = " **Low agreement: the judge's verdict depended on the order.**"
        lines += [f"Agreement across orders: {ev.agreement:.0%}.{flag if ev.low_agreement else ''}"]
        lines.append("")
    if ev.judged and len(ev.presented_order) > 1:
        lines += [
            f"The judge saw the candidates shuffled ({mapping}); its references below are "
            "renumbered to the candidates' own numbers.",
            "",
        ]
    lines += [prose(ev.rationale), ""]
    lines += reasoning.markdown("The judge's reasoning", ev.reasoning)
    for g in ev.gated:
        lines.append(f"- Candidate #{g.index} was not judged: {inline('; '.join(g.reasons))}.")
    lines += [""] if ev.gated else []
    for g in ev.flagged:
        lines.append(f"- Candidate #{g.index} was flagged: {inline('; '.join(g.reasons))}.")
    lines += [""] if ev.flagged else []
    if ev.scores:
        lines += ["| candidate | mean scores | total |", "|---|---|---|"]
        for s in ev.scores:
            detail = ", ".join(f"{k} {v:g}" for k, v in s.scores.items())
            lines.append(f"| #{s.index} | {detail} | {s.total if s.total is not None else ''} |")
        lines.append("")
    return lines


def editor_review(output: TranslationOutput) -> list[str]:
    review = output.editor_review
    return [
        "## Editor review",
        "",
        prose(review.suggestions),
        "",
        *reasoning.markdown("The editor's reasoning", review.reasoning),
    ]


def revision_notes(output: TranslationOutput) -> list[str]:
    rev = output.revision
    return [
        "## Revision notes",
        "",
        prose(rev.notes),
        "",
        *reasoning.markdown("The translator's reasoning for the revision", rev.reasoning),
    ]


def revision_check(output: TranslationOutput) -> list[str]:
    check = output.revision_check
    kept = "the revision" if check.kept else f"candidate {output.evaluation.selected_index}"
    said = f"Final text: {kept} ({check.decision}): {inline(check.reason)}."
    lines = ["## Revision check", "", said, ""]
    lines += [f"**Warning:** {inline(w.message)}." for w in check.warnings]
    lines += [""] if check.warnings else []
    lines += [f"**Flag:** the revision: {inline(f)}." for f in check.flags]
    lines += [""] if check.flags else []
    if not check.kept:
        lines += [
            "The revision (not kept):",
            "",
            *verse(output.revision.translation),
            "",
        ]
    return lines


SECTIONS: dict[str, Callable[[TranslationOutput], list[str]]] = {
    "initial_translation": candidates,
    "evaluation": evaluation,
    "editor_review": editor_review,
    "translator_revision": revision_notes,
    "revision_check": revision_check,
}
