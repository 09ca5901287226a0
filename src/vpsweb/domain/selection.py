"""Candidate selection: the orders the judge sees, the aggregate, the fallback.

LLM judges favour candidates by position (Wang et al. 2024, "Large Language
Models are not Fair Evaluators"). Shuffling once only spreads that bias at
random, so the judge is asked K times, each time with the candidates rotated,
so that every candidate is shown in as many different positions as K allows;
the choice is the best *mean* score over the orders, per criterion. A call that
favoured whatever it saw first then moves one candidate's mean by half its
inflation (K=2), not the whole verdict. Presented ids (1..M) are mapped back to
candidate indexes here, in one place.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from statistics import fmean

from vpsweb.domain.models import CandidateResult, CandidateScore, Judgement


def presentation_order(indexes: list[int], seed: str) -> list[int]:
    """Candidate indexes in the order the judge sees them first (ids 1..M)."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    order = sorted(indexes)
    random.Random(digest).shuffle(order)
    return order


def judge_orders(indexes: list[int], k: int, seed: str) -> list[list[int]]:
    """K distinct orders: rotations of a shuffled base spread evenly (K = M is a Latin
    square: every candidate once in every position), then reversed rotations."""
    base = presentation_order(indexes, seed)
    m = len(base)
    if m < 2:
        return [base]
    steps = sorted({round(j * m / min(k, m)) % m for j in range(min(k, m))})
    orders = [base[s:] + base[:s] for s in steps]
    backwards = base[::-1]
    orders += [backwards[s:] + backwards[:s] for s in range(m)]
    distinct: list[list[int]] = []
    for order in orders:
        if order not in distinct:
            distinct.append(order)
    return distinct[:k]


def map_presented_id(presented_id: int, order: list[int]) -> int:
    """The candidate index behind a presented id; ValueError if the id is not shown."""
    if not 1 <= presented_id <= len(order):
        raise ValueError(f"judge chose id {presented_id}, but only 1..{len(order)} were shown")
    return order[presented_id - 1]


_SEPARATOR = r"\s*(?:,\s*(?:and|or)?|and|or|&|/)\s*"
# "candidate 2", "candidates 1 and 3" (a list only after a plural: "candidate 7 and 2
# lines" names one candidate), "#2".
_REFERENCE = re.compile(
    rf"(?P<word>\b(?:candidates|ids)\s*)(?P<ids>#?\d+(?:{_SEPARATOR}#?\d+)*)\b"
    r"|(?P<one>\b(?:candidate|id)\s*)(?P<id>#?\d+)\b"
    r"|(?<![\w#])#(?P<hash>\d+)\b",
    re.IGNORECASE,
)
_ID = re.compile(r"#?(\d+)")


def renumber(text: str, order: list[int]) -> str:
    """The judge's references to presented ids ("Candidate 2", "candidates 1 and 3",
    "#2") rewritten as the candidates' own numbers ("Candidate #1"), the numbering the
    reader sees everywhere else: a rationale that says "Candidate 2" beside a chosen
    "#1" reads as a contradiction. Ids outside 1..len(order) are left as written."""

    def one(presented: str) -> str:
        n = int(presented)
        return f"#{order[n - 1]}" if 1 <= n <= len(order) else presented

    def replace(m: re.Match[str]) -> str:
        if m.group("hash") is not None:
            return one(m.group("hash"))
        word, ids = (m.group("word"), m.group("ids")) if m.group("ids") else (m["one"], m["id"])
        return word + _ID.sub(lambda i: one(i.group(1)), ids)

    return _REFERENCE.sub(replace, text)


def aggregate(judgements: list[Judgement]) -> list[CandidateScore]:
    """Per candidate, each criterion's mean over the orders that scored it."""
    per: dict[int, dict[str, list[float]]] = {}
    for j in judgements:
        for s in j.scores:
            for name, value in s.scores.items():
                per.setdefault(s.index, {}).setdefault(name, []).append(value)
    result = []
    for index in sorted(per):
        means = {name: round(fmean(vals), 3) for name, vals in per[index].items()}
        result.append(
            CandidateScore(index=index, scores=means, total=round(sum(means.values()), 3))
        )
    return result


def _mean_position(index: int, judgements: list[Judgement]) -> float:
    return fmean(j.order.index(index) for j in judgements if index in j.order)


def choose(judgements: list[Judgement], scores: list[CandidateScore]) -> tuple[int, bool]:
    """(chosen candidate, whether it is the top aggregate score). The best mean total
    wins; ties go to the candidate more orders chose, then to the one shown later on
    average (early positions are the favoured ones), then to the lowest index. With no
    scores at all, the orders' own choices are counted with the same tie rule."""
    parsed = [j for j in judgements if j.selected_index is not None]
    votes = Counter(j.selected_index for j in parsed if j.selected_index is not None)
    totals = {s.index: s.total for s in scores if s.total is not None}
    pool = list(totals) or list(votes)
    if not pool:
        raise ValueError("no order gave a usable verdict")

    def rank(i: int) -> tuple[float, int, float, int]:
        return (totals.get(i, 0.0), votes[i], _mean_position(i, parsed or judgements), -i)

    chosen = max(pool, key=rank)
    return chosen, bool(totals) and totals.get(chosen) == max(totals.values())


def agreement(judgements: list[Judgement], chosen: int) -> float | None:
    """Share of the usable orders whose own choice is the final one."""
    choices = [j.selected_index for j in judgements if j.selected_index is not None]
    if len(choices) < 2:
        return None
    return round(sum(c == chosen for c in choices) / len(choices), 3)


def _line_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def fallback_select(
    survivors: list[CandidateResult], source_poem: str, tie_order: list[int] | None = None
) -> CandidateResult:
    """When no judge's answer can be used: the candidate whose line count is closest to
    the source's (form is the cheapest proxy for care); ties go by ``tie_order`` (the
    job's shuffled order, so that candidate 0 is not always the one), else lowest index."""
    if not survivors:
        raise ValueError("no candidates to select from")
    target = _line_count(source_poem)
    rank = {idx: pos for pos, idx in enumerate(tie_order or [])}
    return min(
        survivors,
        key=lambda c: (abs(_line_count(c.translation) - target), rank.get(c.index, c.index)),
    )
