"""Revision check: the revision replaces the chosen candidate only if it is better.

A reviser can make a poem worse (accepting every suggestion flattens it), and
nothing compared the two before. The revision first passes the same gates as
the candidates; then a judge compares the two texts once per order (both
orders by default, in parallel), and the revision is kept only if it wins every
order: a verdict that flips with the order is position, not quality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb import gates
from vpsweb.errors import LLMError, ParseError
from vpsweb.models import Revision, RevisionCheck
from vpsweb.parsing import extract_tag
from vpsweb.prompts import neutralise
from vpsweb.stages.base import (
    Prior,
    Recorder,
    StageContext,
    ask,
    combine,
    common_variables,
    in_parallel,
    stage_prompt,
)

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.stages.table import TranslationOutput

STEP = "revision_check"
DISPLAY = "Revision Check"
TEXTS = ("candidate", "revision")


def _orders(k: int) -> list[list[str]]:
    """Alternate which text is shown first: candidate first, then revision first, ..."""
    return [list(TEXTS) if i % 2 == 0 else list(reversed(TEXTS)) for i in range(k)]


def _parse_preference(order: list[str]):
    def parse(text: str) -> str:
        raw = (extract_tag(text, "preferred_version") or "").strip()
        if raw not in ("1", "2"):
            raise ParseError(
                f"<preferred_version> must be 1 or 2, got {raw[:20]!r}",
                missing=[] if raw else ["preferred_version"],
            )
        return order[int(raw) - 1]

    return parse


def check_answer(text: str, prompt: str) -> None:
    _parse_preference(list(TEXTS))(text)


def _same(a: str, b: str) -> bool:
    return [x.strip() for x in a.strip().splitlines()] == [
        x.strip() for x in b.strip().splitlines()
    ]


def check_revision(ctx: StageContext, prior: Prior, index: int | None = None) -> RevisionCheck:
    plan = ctx.plan
    chosen = prior.selected()
    revision = prior.get("translator_revision", Revision)
    req = plan.request
    reasons = gates.check(
        revision.translation,
        source=req.poem,
        source_lang=req.source_lang,
        target_lang=req.target_lang,
        gates=plan.gates,
    )
    if reasons:
        why = f"the revision fails the checks ({'; '.join(reasons)}); the candidate is kept"
        return RevisionCheck(decision="revision_rejected", reason=why, gate_reasons=reasons)
    if plan.revision_check_orders == 0 or _same(revision.translation, chosen.translation):
        why = (
            "the revision changes no line"
            if plan.revision_check_orders
            else "not checked (evaluation.revision_check_orders is 0)"
        )
        return RevisionCheck(decision="revision_kept", reason=why)
    texts = {"candidate": chosen.translation, "revision": revision.translation}
    orders = _orders(plan.revision_check_orders)

    def judge(order: list[str]) -> tuple[str | None, Recorder, str]:
        call = plan.steps[STEP]
        rec = Recorder(call, ctx.model(call))
        versions = [{"id": i + 1, "translation": neutralise(texts[t])} for i, t in enumerate(order)]
        variables = {**common_variables(plan), "versions": versions}
        prompt = stage_prompt(ctx, STEP, call, variables)
        try:
            return (
                ask(
                    ctx,
                    rec,
                    prompt,
                    _parse_preference(order),
                    parse_attempts=plan.judge_retries + 1,
                ),
                rec,
                "",
            )
        except (ParseError, LLMError) as exc:
            return None, rec, str(exc)

    runs = in_parallel(judge, orders)
    preferred = [p for p, _, _ in runs]
    kept = all(p == "revision" for p in preferred)
    return RevisionCheck(
        decision="revision_kept" if kept else "revision_rejected",
        reason=_reason(orders, runs),
        orders=orders,
        preferred=preferred,
        metrics=combine([rec for _, rec, _ in runs]),
    )


def _reason(orders: list[list[str]], runs: list[tuple[str | None, Recorder, str]]) -> str:
    parts = []
    for order, (pref, _, error) in zip(orders, runs, strict=True):
        shown = f"with the {order[0]} shown first"
        parts.append(
            f"{shown}: {error}" if pref is None else f"{shown}, the judge preferred the {pref}"
        )
    if all(p == "revision" for p, _, _ in runs):
        return "the revision won every order (" + "; ".join(parts) + ")"
    return (
        "the revision did not win every order, so the candidate is kept (" + "; ".join(parts) + ")"
    )


def summary(result: RevisionCheck) -> str:
    return "revision kept" if result.kept else "revision rejected: the chosen candidate is kept"


def markdown(output: TranslationOutput) -> list[str]:
    check = output.revision_check
    kept = "the revision" if check.kept else f"candidate {output.evaluation.selected_index}"
    lines = ["## Revision check", "", f"Final text: {kept} ({check.decision}): {check.reason}.", ""]
    if not check.kept:
        lines += [
            "The rejected revision:",
            "",
            "```",
            output.revision.translation.strip(),
            "```",
            "",
        ]
    return lines
