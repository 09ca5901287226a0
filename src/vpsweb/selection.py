"""Candidate selection helpers: shuffled presentation and a deterministic fallback.

LLM judges favour candidates by position, so the judge sees the survivors in an
order shuffled by a seed derived from the job; its answer (a presented id) is
mapped back to the candidate index here, in one place.
"""

from __future__ import annotations

import hashlib
import random

from vpsweb.models import CandidateResult


def presentation_order(indexes: list[int], seed: str) -> list[int]:
    """Candidate indexes in the order the judge sees them (ids 1..M)."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    order = sorted(indexes)
    random.Random(digest).shuffle(order)
    return order


def map_presented_id(presented_id: int, order: list[int]) -> int:
    """The candidate index behind a presented id; ValueError if the id is not shown."""
    if not 1 <= presented_id <= len(order):
        raise ValueError(f"judge chose id {presented_id}, but only 1..{len(order)} were shown")
    return order[presented_id - 1]


def _line_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def fallback_select(survivors: list[CandidateResult], source_poem: str) -> CandidateResult:
    """When the judge cannot be understood: the candidate whose line count is closest
    to the source's (form is the cheapest proxy for care), lowest index on ties."""
    if not survivors:
        raise ValueError("no candidates to select from")
    target = _line_count(source_poem)
    return min(survivors, key=lambda c: (abs(_line_count(c.translation) - target), c.index))
