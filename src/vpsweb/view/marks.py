"""How a status is said: a symbol and words, never color alone (color is extra).

Each label starts with its own symbol, so a reader who cannot tell red from green
(or a screen reader, or a log) still tells a late candidate from a failed one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, computed_field

CandidateStatus = Literal[
    "waiting", "running", "waiting_for_quota", "succeeded", "late", "gated", "failed"
]
StageStatus = Literal[
    "waiting", "running", "waiting_for_answer", "waiting_for_quota", "completed", "failed"
]

# The straggler policy stopped it: nothing went wrong, the others sufficed.
LATE_CAUSE = "stopped: quorum reached"

SYMBOL: dict[str, str] = {
    "waiting": "·",
    "running": "…",
    "succeeded": "✓",
    "completed": "✓",
    "late": "⏱",
    "gated": "⊘",
    "failed": "✗",
    "waiting_for_answer": "✎",
    # A call waits for its provider's quota: nothing is wrong, the cluster is busy.
    "waiting_for_quota": "⧖",
}

# A CSS class per status: the page styles by it (color is extra to the label).
CSS: dict[str, str] = {
    "waiting": "pending",
    "running": "running",
    "succeeded": "done",
    "completed": "done",
    "late": "late",
    "gated": "gated",
    "failed": "failed",
    "waiting_for_answer": "waiting-for-you",
    "waiting_for_quota": "waiting-for-quota",
}

# A text judged (or delivered) all the same, with a finding: a glossary term it misses.
FLAG = "⚑"

WORDS: dict[str, str] = {
    "waiting_for_answer": "waiting for your answer",
    "waiting_for_quota": "waiting for quota",
}


def candidate_label(status: str, cause: str = "", flag: str = "") -> str:
    """E.g. "✓ succeeded", "⏱ late (stopped: quorum reached)", "⊘ gated: copied the
    source", "✗ failed: timeout", "⧖ waiting for deepseek quota (3 ahead; requests)";
    a flag follows: "✓ succeeded ⚑ glossary: "长安" should be "Chang'an" (...)"."""
    label = _status_label(status, cause)
    return f"{label} {FLAG} {flag}" if flag else label


def _status_label(status: str, cause: str) -> str:
    symbol = SYMBOL.get(status, "·")
    if status == "waiting_for_quota":  # the cause is the wait's own words
        return f"{symbol} {cause or WORDS[status]}"
    if status == "late":
        return f"{symbol} late ({cause or LATE_CAUSE})"
    if status in ("gated", "failed"):
        return f"{symbol} {status}: {cause}" if cause else f"{symbol} {status}"
    return f"{symbol} {status}"


def stage_label(status: str) -> str:
    words = WORDS.get(status, status)
    return f"{SYMBOL.get(status, '·')} {words}"


def clock(seconds: float | None) -> str:
    """A duration as a display shows it: "1.5s", "2:05"; "" for none."""
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{seconds:.1f}s"


class Marked(BaseModel):
    """A candidate as a display shows it: its status and cause, said as a label (symbol
    and words) and a CSS class; the live rows and the result's cards alike."""

    status: CandidateStatus = "waiting"
    cause: str = ""  # why it failed, was gated, was stopped, or waits (for quota)
    flag: str = ""  # what it was flagged for, though judged (a glossary miss)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        return candidate_label(self.status, self.cause, self.flag)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def css(self) -> str:
        return CSS[self.status]
