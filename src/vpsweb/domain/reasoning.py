"""A reasoning model's own thinking (``reasoning_content``), kept with its step.

DeepSeek's reasoner and other OpenAI-compatible servers return the model's
reasoning beside its answer. It is what a translator reads to understand a
choice (why this image, why this candidate), so it is kept in the step's record
instead of being dropped after parsing. It is sized like the other long texts a
job carries (a briefing, few-shot examples: ``MAX_REASONING_CHARS``, the same
20,000 characters), because it goes into the stored step output, the result JSON
and the Markdown: a runaway chain of thought must not bloat them.
What is cut is the middle: the start says how the model read the task, the end
how it decided.
"""

from __future__ import annotations

import re

MAX_REASONING_CHARS = 20_000
_BACKTICKS = re.compile(r"`+")


def kept(text: object, limit: int = MAX_REASONING_CHARS) -> str:
    """The reasoning as stored: stripped, and at most ``limit`` characters, with a note
    where the middle was left out ("" for none, or for a value that is not text)."""
    if not isinstance(text, str):
        return ""
    text = text.strip()
    if len(text) <= limit:
        return text
    left_out = len(text) - limit
    note = f"\n[... {left_out:,} characters of reasoning left out ...]\n"
    head = (limit - len(note)) // 2
    tail = limit - len(note) - head
    return text[:head].rstrip() + note + text[len(text) - tail :].lstrip()


def markdown(label: str, text: str) -> list[str]:
    """A reasoning under its label, fenced so that nothing in it is read as Markdown
    (the fence is longer than any run of backticks inside); nothing for none."""
    if not text:
        return []
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"*{label}:*", "", f"{fence}text", text, fence, ""]


def short(text: str, width: int = 100) -> str:
    """One line of it for a terminal: the start, and how much more there is."""
    line = " ".join(text.split())
    return line if len(line) <= width else f"{line[: width - 1]}… ({len(text):,} characters)"
