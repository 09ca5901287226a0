"""Revision check: the revision replaces the chosen candidate only if it is better.

A reviser can make a poem worse (accepting every suggestion flattens it), and
nothing compared the two before. The revision first passes the same gates as
the candidates; then a judge compares the two texts once per order (both
orders by default, in parallel), and the revision is kept only if it wins every
order: a verdict that flips with the order is position, not quality.

An order whose judge gave no verdict (an HTTP error, a model the server does not
know, answers that never parsed) is not a verdict either way. The rule: any order
preferring the candidate rejects the revision (a verdict); otherwise, with any order
unanswered, the revision is *unchecked*: the candidate is kept (the guard's own rule:
a revision replaces the candidate only when shown to be better, and the revision
stays in the result for the reader), and a warning says the check did not run and
why, instead of calling the revision rejected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vpsweb.domain import gates
from vpsweb.domain.job_warnings import JobWarning
from vpsweb.domain.models import Revision, RevisionCheck, RevisionDecision
from vpsweb.domain.parsing import extract_tag, require_answer
from vpsweb.domain.prompts import neutralise
from vpsweb.errors import LLMError, ParseError
from vpsweb.stages.shared import (
    Prior,
    Recorder,
    StageContext,
    ask,
    combine,
    common_variables,
    glossary_misses,
    in_parallel,
    stage_prompt,
)
from vpsweb.stages.table import stage

if TYPE_CHECKING:  # pragma: no cover
    pass

STEP = "revision_check"
DISPLAY = stage(STEP).display_name
TEXTS = ("candidate", "revision")


def _orders(k: int) -> list[list[str]]:
    """Alternate which text is shown first: candidate first, then revision first, ..."""
    return [list(TEXTS) if i % 2 == 0 else list(reversed(TEXTS)) for i in range(k)]


def _parse_preference(order: list[str]):
    def parse(text: str) -> str:
        require_answer(text)
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
    revision = prior.get("translator_revision", Revision)
    req = plan.request
    reasons = gates.check(
        revision.translation,
        source=req.poem,
        source_lang=req.source_lang,
        target_lang=req.target_lang,
        gates=plan.gates,
    )
    # Glossary misses are flagged; in "strict" mode they also reject the revision, so
    # that the candidate (which passed them) is delivered.
    flags = glossary_misses(
        plan, revision.translation, revision.translated_title, revision.translated_poet
    )
    if req.glossary is not None and req.glossary.mode == "strict":
        reasons += flags
    if reasons:
        why = f"the revision fails the checks ({'; '.join(reasons)}); the candidate is kept"
        return RevisionCheck(
            decision="revision_rejected", reason=why, gate_reasons=reasons, flags=flags
        )
    checked = _judged(ctx, prior)
    return checked.model_copy(update={"flags": flags})


def _judged(ctx: StageContext, prior: Prior) -> RevisionCheck:
    """The revision, past the gates, against the candidate: unchanged, unchecked, or
    judged in every order."""
    plan = ctx.plan
    chosen = prior.selected()
    revision = prior.get("translator_revision", Revision)
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
    decision = _decision(preferred)
    return RevisionCheck(
        decision=decision,
        reason=_reason(orders, runs, decision),
        orders=orders,
        preferred=preferred,
        metrics=combine([rec for _, rec, _ in runs]),
        warnings=_warnings(runs) if decision == "revision_unchecked" else [],
    )


def _decision(preferred: list[str | None]) -> RevisionDecision:
    """See the module docstring: a verdict for the candidate rejects; an order without
    a verdict leaves the revision unchecked; only winning every order keeps it."""
    if "candidate" in preferred:
        return "revision_rejected"
    if None in preferred:
        return "revision_unchecked"
    return "revision_kept"


def _warnings(runs: list[tuple[str | None, Recorder, str]]) -> list[JobWarning]:
    errors = [error for pref, _, error in runs if pref is None]
    causes = "; ".join(dict.fromkeys(errors))
    message = (
        f"the revision check did not run in {len(errors)} of {len(runs)} order(s), so the "
        f"revision was not compared with the candidate ({causes}); the candidate is kept "
        "and the revision is shown beside it"
    )
    return [JobWarning(kind="revision_check_unavailable", stage=DISPLAY, message=message)]


def _reason(
    orders: list[list[str]],
    runs: list[tuple[str | None, Recorder, str]],
    decision: RevisionDecision,
) -> str:
    parts = []
    for order, (pref, _, error) in zip(orders, runs, strict=True):
        shown = f"with the {order[0]} shown first"
        parts.append(
            f"{shown}: {error}" if pref is None else f"{shown}, the judge preferred the {pref}"
        )
    if decision == "revision_kept":
        return "the revision won every order (" + "; ".join(parts) + ")"
    if decision == "revision_unchecked":
        return (
            "not checked: an order gave no verdict and none preferred the candidate, so "
            "the candidate is kept (" + "; ".join(parts) + ")"
        )
    return (
        "the revision did not win every order, so the candidate is kept (" + "; ".join(parts) + ")"
    )


def summary(result: RevisionCheck) -> str:
    if result.decision == "revision_unchecked":
        text = "revision not checked (the judge did not answer): the chosen candidate is kept"
    else:
        text = "revision kept" if result.kept else "revision rejected: the chosen candidate is kept"
    return f"{text}; the revision is flagged ({'; '.join(result.flags)})" if result.flags else text
