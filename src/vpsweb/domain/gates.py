"""Deterministic gates: checks a translation must pass before a judge sees it.

A judge model may like a text no reader wants: the source copied back (perfect
"fidelity"), the right poem in the wrong script, one line for a twenty-line
poem, a padded text (judges favour length), or an answer that leaks the
protocol's tags or the editor's [L#] labels. These are cheap to detect
exactly, so they are checked here, before the judge, and never paid for twice.
Each gate names its reason in words a translator understands.
"""

from __future__ import annotations

import re
import unicodedata

from vpsweb.config.schema import GateSettings

# Letters counted per script; anything else (digits, punctuation, spaces) is neutral.
_SCRIPTS = {
    "en": "Latin",
    "pl": "Latin",
    "zh-CN": "Han",
}
# Protocol tags (any <tag> or </tag> of the answer formats, defused or not) and labels.
_TAG = re.compile(r"</?[a-z][a-z0-9_]*>|‹/?[a-z][a-z0-9_]*›", re.IGNORECASE)
_LABEL = re.compile(r"\[L\d+\]")
# A CJK character carries about as much text as three Latin letters.
_WIDE = 3
# Length of a translation relative to its source, in those units, that is typical for
# a pair of scripts (classical Chinese is dense: its English runs long; modern Chinese
# renderings of English verse measure about 0.8x-1.5x, hence 1.0 rather than 0.7).
# Letters per source line that are never "a fragment" (two CJK characters, two words).
_LINE_FLOOR = 6
_EXPECTED: dict[tuple[str | None, str | None], float] = {
    ("Latin", "Han"): 1.0,
    ("Han", "Latin"): 1.8,
}


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff":
        return "Han"
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "other"
    return name.split(" ", 1)[0].title()


def script_share(text: str, lang: str) -> float:
    """Share of letters in the language's script (1.0 for a text with no letters:
    nothing to judge)."""
    wanted = _SCRIPTS.get(lang)
    scripts = [s for s in map(_script, text) if s is not None]
    if not scripts or wanted is None:
        return 1.0
    return sum(s == wanted for s in scripts) / len(scripts)


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", _LABEL.sub("", text)).strip().casefold()


def copy_overlap(text: str, source: str, n: int) -> float:
    """Share of the text's character n-grams that also occur in the source."""
    a, b = _normalised(text), _normalised(source)
    grams = {a[i : i + n] for i in range(len(a) - n + 1)}
    if not grams:
        return 1.0 if a and a in b else 0.0
    src = {b[i : i + n] for i in range(len(b) - n + 1)}
    return len(grams & src) / len(grams)


def shape(text: str) -> int:
    """Lines plus stanza breaks: a stanza break is part of a poem's form."""
    lines = [line.strip() for line in text.strip("\n").splitlines()]
    count = sum(1 for line in lines if line)
    breaks = sum(1 for i, line in enumerate(lines) if not line and i and lines[i - 1])
    return count + breaks


def weight(text: str) -> int:
    """Length in Latin-letter equivalents, so that lengths compare across scripts."""
    return sum(_WIDE if _script(ch) == "Han" else 1 for ch in text if not ch.isspace())


def check(
    text: str, *, source: str, source_lang: str, target_lang: str, gates: GateSettings
) -> list[str]:
    """Every reason the text fails the gates; empty when it passes."""
    if not gates.enabled:
        return []
    reasons: list[str] = []
    overlap = copy_overlap(text, source, gates.copy_ngram)
    if source_lang != target_lang and overlap > gates.max_copy_overlap:
        reasons.append(f"copies the source ({overlap:.0%} of its text is the source's)")
    share = script_share(text, target_lang)
    if share < gates.min_script_share:
        reasons.append(
            f"mostly not in the target script ({share:.0%} of its letters are "
            f"{_SCRIPTS.get(target_lang)}; at least {gates.min_script_share:.0%} required)"
        )
    got, want = shape(text), shape(source)
    lo, hi = gates.line_ratio
    if want and not lo <= got / want <= hi:
        reasons.append(
            f"{got} lines and stanza breaks for the source's {want} (allowed {lo:g}x to {hi:g}x)"
        )
    if leaks := sorted(set(_TAG.findall(text)) | set(_LABEL.findall(text))):
        reasons.append(f"leaks protocol text: {', '.join(leaks[:3])}")
    if (length := _length_reason(text, source, source_lang, target_lang, gates)) is not None:
        reasons.append(length)
    return reasons


def _length_reason(
    text: str, source: str, source_lang: str, target_lang: str, gates: GateSettings
) -> str | None:
    """Padding or a fragment, by length against what the language pair leads to expect.

    For a poem of a line or two, "expected" is a handful of letters and an honest but
    fuller translation is easily three times it ("Silence." -> "四下一片寂静无声。"),
    so up to ``line_allowance`` letters per source line always pass. Padding repeats
    each line and so still exceeds that. Likewise a terse line of ``_LINE_FLOOR``
    letters is a line, not a fragment ("白日依山尽" -> "White sun, hills").
    """
    pair = (_SCRIPTS.get(source_lang), _SCRIPTS.get(target_lang))
    expected = max(1, weight(source)) * _EXPECTED.get(pair, 1.0)
    lines = max(1, sum(1 for line in source.splitlines() if line.strip()))
    got, (lo, hi) = weight(text), gates.length_ratio
    lower = min(lo * expected, _LINE_FLOOR * lines)
    upper = max(hi * expected, gates.line_allowance * lines)
    if lower <= got <= upper:
        return None
    allowed = (
        f"{lo:g}x to {hi:g}x"
        if got < lower
        else f"up to {hi:g}x, or {gates.line_allowance} letters a line"
    )
    return f"{got / expected:.2f}x the length expected from the source (allowed {allowed})"
