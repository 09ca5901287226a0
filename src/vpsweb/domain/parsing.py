"""Tolerant extraction of XML-tagged fields from LLM answers.

Models wrap answers in code fences, prose and reasoning, and nest tags inside
notes. A field runs from its first opening tag to its *last* closing tag, and an
unclosed tag runs to the end of the text. But an answer with none of the required
tags is a failure: the original application passed such answers on as an empty
translation, and the user paid for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vpsweb.errors import EmptyAnswer, ParseError, TruncatedAnswer

EXCERPT_CHARS = 60  # of an unusable answer, for the job's own record only

_FENCE = re.compile(r"^\s*```[\w-]*\s*$", re.MULTILINE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def clean_answer(text: str) -> str:
    """The answer without <think> blocks and code-fence lines."""
    text = _THINK.sub("", text)
    return _FENCE.sub("", text)


def require_answer(text: str) -> None:
    """EmptyAnswer if there is nothing to parse: every parser asks this first, so an
    empty answer is said to be empty (by a model or a person), not "missing tags"."""
    if clean_answer(text).strip():
        return
    if text.strip():
        raise EmptyAnswer("the answer is empty apart from <think> reasoning or code fences")
    raise EmptyAnswer("the answer is empty")


def _open_tag(tag: str) -> re.Pattern[str]:
    # <tag> or <tag attr="...">, but not <tag_suffix>
    return re.compile(rf"<{re.escape(tag)}(\s[^>]*)?>", re.IGNORECASE)


def extract_tag(text: str, tag: str, *, siblings: Iterable[str] = ()) -> str | None:
    """The field's text, or None if the opening tag never appears.

    An unclosed field runs to the end of the text, or to the opening of a sibling
    field that follows it (so an unclosed translation does not swallow its notes).
    """
    text = clean_answer(text)
    opening = _open_tag(tag).search(text)
    if opening is None:
        return None
    start = opening.end()
    # Search the original text: lower() can change its length (e.g. 'İ').
    closes = list(re.finditer(re.escape(f"</{tag}>"), text, re.IGNORECASE))
    end = closes[-1].start() if closes else -1
    if end >= start:
        return text[start:end].strip()
    stop = len(text)
    for other in siblings:
        if other != tag and (m := _open_tag(other).search(text, start)):
            stop = min(stop, m.start())
    return text[start:stop].strip()


def ends_inside(text: str, tag: str, siblings: Iterable[str] = ()) -> bool:
    """The answer opens ``tag`` and ends before closing it, with no other field after it:
    it was cut off mid-field (a model that merely forgot a closing tag goes on to the
    next field)."""
    text = clean_answer(text)
    opening = _open_tag(tag).search(text)
    if opening is None or re.search(re.escape(f"</{tag}>"), text, re.IGNORECASE):
        return False
    return not any(
        other != tag and _open_tag(other).search(text, opening.end()) for other in siblings
    )


def extract_fields(
    text: str,
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    what: str = "answer",
) -> dict[str, str]:
    """Extract required and optional tags; raise ParseError if a required one is absent
    or empty, and TruncatedAnswer if the answer ends inside a required one (it was cut
    off). The error names the tags, not the answer: excerpt is kept apart."""
    require_answer(text)
    required = list(required)
    fields: dict[str, str] = {}
    missing: list[str] = []
    siblings = [*required, *optional]
    excerpt = clean_answer(text).strip()[:EXCERPT_CHARS]
    for tag in required:
        if ends_inside(text, tag, siblings):
            raise TruncatedAnswer(
                f"{what} was cut off inside <{tag}>", missing=[tag], excerpt=excerpt
            )
        value = extract_tag(text, tag, siblings=siblings)
        if not value:
            missing.append(tag)
        else:
            fields[tag] = value
    if missing:
        raise ParseError(
            f"{what} is missing required tag(s) {', '.join(f'<{t}>' for t in missing)}",
            missing=missing,
            excerpt=excerpt,
        )
    for tag in optional:
        fields[tag] = extract_tag(text, tag, siblings=siblings) or ""
    return fields


_SCORE = re.compile(r"<score\s+id=\"?(\d+)\"?\s*>(.*?)</score>", re.DOTALL | re.IGNORECASE)
_PAIR = re.compile(r"([A-Za-z_][\w ]*?)\s*[=:]\s*(\d+(?:\.\d+)?)")
_INT = re.compile(r"-?\d+")


def parse_scores(text: str) -> dict[int, dict[str, float]]:
    """Per-candidate scores keyed by presented id; lenient, since scores are informative."""
    scores: dict[int, dict[str, float]] = {}
    for cid, body in _SCORE.findall(clean_answer(text)):
        pairs = {k.strip().lower(): float(v) for k, v in _PAIR.findall(body)}
        scores[int(cid)] = pairs
    return scores


def parse_selected_index(text: str) -> int:
    """The judge's chosen presented id; ParseError if absent or not a number."""
    require_answer(text)
    raw = extract_tag(text, "selected_index")
    if not raw:
        raise ParseError("evaluation has no <selected_index>", missing=["selected_index"])
    match = _INT.search(raw)
    if match is None:
        raise ParseError(f"<selected_index> is not a number: {raw[:50]!r}")
    return int(match.group())


def label_lines(poem: str) -> str:
    """Prefix non-empty lines with [L1], [L2], ...; blank lines stay as stanza breaks."""
    out: list[str] = []
    n = 0
    for line in poem.strip("\n").splitlines():
        if line.strip():
            n += 1
            out.append(f"[L{n}] {line.strip()}")
        else:
            out.append("")
    return "\n".join(out)
