"""A right answer for selection: hidden quality, planted defects, and a biased judge.

Why: the judge, the gates and multi-order judging can only be measured against a
ground truth, and a real model has none. The simulator therefore gives every
translation it writes a hidden quality, plants defects that a naive judge likes,
and judges with the biases real LLM judges are known for, each behind a knob.

The model
---------
* ``hidden_quality(t)``: uniform in [0.35, 0.90], a pure function of the normalised
  text (lines stripped, blank lines dropped): a client can recompute it from the
  translation it got back, whatever whitespace its parser trimmed.
* Planted defects (``--defect-rate``): a candidate replaced by one of DEFECT_KINDS.
  The judge sees its quality as DEFECT_QUALITY (0.97, above every honest candidate),
  so without gates it usually wins. The judge recognises them from the text alone
  (``defect_kind``): no honest simulated translation copies the source, switches
  script, drops lines, pads or leaks tags, so answers stay a pure function of the
  prompt and need no server state.
* Scores: for each shown candidate c and criterion k,
  ``score = clamp(1, 10, round(10*q(c) + gauss(0, noise) + bonus(c), 1))``, the
  noise seeded by (prompt, candidate id, criterion, seed). Another order of the
  same candidates is another prompt, hence independent noise: averaging orders
  helps. ``bonus(c) = length_bias * (len(c) / mean len - 1)``, plus
  ``self_preference`` if c is written in the judge's own style (``in_style``).
* Choice: the best total, ties to the lowest id. With probability ``first_bias``
  (seeded by the prompt) the call is biased: if the first-shown candidate is not
  already best, its scores are raised to the best's plus uniform(0.1, 0.5) per
  criterion (the judge rationalises) and it is chosen.
* Accuracy of the unbiased judge: with noise 0.2 and four criteria, qualities 0.03
  apart differ by 1.2 in expected total against a noise s.d. of 0.57 on the
  difference: it picks the better one about 98% of the time, and nearly always
  for larger gaps.

Style signature: a writer draws the first, second and last token of its first line
from groups of the vocabulary chosen by sha256 of its model name (7 groups each,
343 signatures), so a judge can tell its own model's translations from others'.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

QUALITY_MIN, QUALITY_MAX = 0.35, 0.90
DEFECT_QUALITY = 0.97
DEFECT_KINDS = ("copy", "wrong_script", "dropped_lines", "padding", "leaked_tags")
PADDING_REPEATS = 4

_WORDS = (
    "mist harbor silent cat feet city evening light river stone moon frost home road "
    "wood yellow morning sigh wind leaf shadow window lantern quiet far gentle old bright"
)
EN_WORDS = tuple(_WORDS.split())
ZH_CHARS = "雾港静猫足城暮光河石月霜乡路林黄晨叹风叶影窗灯远轻旧明山水云花夜春秋"
STYLE_GROUPS = 7
STYLE_POSITIONS = 3  # first, second and last token of the first line

_CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_PUNCT = "，。、；：！？"
# Protocol text in a translation: tags (raw, or as vpsweb quotes them: ‹tag›) or labels.
_LEAK = re.compile(r"[<‹]/?[A-Za-z_]+[>›]|^\s*\[L\d+\]")
# Filler between the repeats: words no honest line has, so padding is recognisable,
# and enough of them that a padded text is about six times the honest one.
_PAD = {False: ", and again, softly, ", True: "，又是那样"}


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded by a stable hash: Python's hash() is salted per process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def normalise(translation: str) -> str:
    """Lines stripped, blank lines dropped: what quality and fingerprints are taken of,
    so that a parser's trimming does not change them."""
    return "\n".join(s for line in translation.splitlines() if (s := line.strip()))


def fingerprint(translation: str) -> str:
    """The sha256 of the normalised text: how /truth names planted defects."""
    return hashlib.sha256(normalise(translation).encode()).hexdigest()


def hidden_quality(translation: str) -> float:
    """The translation's true quality in [0.35, 0.90], unknown to vpsweb."""
    digest = hashlib.sha256(normalise(translation).encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return round(QUALITY_MIN + (QUALITY_MAX - QUALITY_MIN) * unit, 6)


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


# --- style signatures ------------------------------------------------------------------


def style_group(vocab: Sequence[str], model: str, position: int) -> Sequence[str]:
    """The part of ``vocab`` a model draws its ``position``-th signature token from."""
    digest = hashlib.sha256(f"style:{model}".encode()).digest()
    g = int.from_bytes(digest[8 * position : 8 * position + 8], "big") % STYLE_GROUPS
    return vocab[g::STYLE_GROUPS]


def signed(tokens: list[str], vocab: Sequence[str], model: str, rng: random.Random) -> list[str]:
    """``tokens`` (at least three) with the model's signature at the first, second and
    last place."""
    out = list(tokens)
    for position, at in enumerate((0, 1, len(out) - 1)):
        out[at] = rng.choice(style_group(vocab, model, position))
    return out


def _tokens(line: str) -> tuple[list[str], Sequence[str]]:
    if has_cjk(line):
        return [c for c in line if c not in _CJK_PUNCT and not c.isspace()], ZH_CHARS
    return line.split(), EN_WORDS


def in_style(translation: str, model: str) -> bool:
    """Whether the first line carries ``model``'s signature (see the module docstring)."""
    lines = normalise(translation).splitlines()
    tokens, vocab = _tokens(lines[0]) if lines else ([], EN_WORDS)
    if len(tokens) < STYLE_POSITIONS:
        return False
    picked = (tokens[0], tokens[1], tokens[-1])
    return all(t in style_group(vocab, model, p) for p, t in enumerate(picked))


# --- planted defects -------------------------------------------------------------------


def planted_kind(prompt: str, seed: int, rate: float, source: list[str]) -> str | None:
    """Whether (and which) defect replaces this candidate: a pure function of the prompt
    and seed, so a job's candidates get the same fate on every run."""
    if rate <= 0:
        return None
    r = seeded_rng("defect", prompt, seed)
    if r.random() >= rate:
        return None
    kinds = [k for k in DEFECT_KINDS if k != "dropped_lines" or _count(source) > 1]
    return r.choice(kinds)


def _count(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip())


def plant(kind: str, *, translation: str, source: list[str], foreign: str, chinese: bool) -> str:
    """The defective text of ``kind``: ``foreign`` is a translation in the wrong script."""
    lines = translation.splitlines()
    if kind == "copy":
        return "\n".join(source)
    if kind == "wrong_script":
        return foreign
    if kind == "dropped_lines":
        return next(line for line in lines if line.strip())
    if kind == "padding":
        return "\n".join(_PAD[chinese].join([x] * PADDING_REPEATS) if x else x for x in lines)
    if kind == "leaked_tags":
        n = 0
        out = ["<translated_poem_title>"]
        for line in lines:
            n += bool(line)
            out.append(f"[L{n}] {line}" if line else line)
        return "\n".join(out)
    raise ValueError(f"unknown defect kind {kind!r}")


def defect_kind(translation: str, source: list[str], chinese: bool) -> str | None:
    """Which planted defect ``translation`` is, if any, judged from the text alone."""
    lines = normalise(translation).splitlines()
    if not lines:
        return None
    if lines == normalise("\n".join(source)).splitlines():
        return "copy"
    if any(_LEAK.search(line) for line in lines):
        return "leaked_tags"
    if any(len(line.split(_PAD[chinese])) >= PADDING_REPEATS for line in lines):
        return "padding"
    if chinese != has_cjk("\n".join(lines)):
        return "wrong_script"
    if len(lines) == 1 and _count(source) > 1:
        return "dropped_lines"
    return None


def judged_quality(translation: str, source: list[str], chinese: bool) -> float:
    """Quality as the judge perceives it: a planted defect looks excellent."""
    if defect_kind(translation, source, chinese):
        return DEFECT_QUALITY
    return hidden_quality(translation)


# --- the judge -------------------------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    """What the simulator's options set for quality and judging (see SimulatorOptions)."""

    defect_rate: float = 0.0
    noise: float = 0.2
    first_bias: float = 0.0
    length_bias: float = 0.0
    self_preference: float = 0.0


@dataclass(frozen=True)
class Verdict:
    scores: dict[int, dict[str, float]]  # by shown id, in prompt order
    chosen: int
    biased: bool  # the first-position bias decided this call


def _clamp(value: float) -> float:
    return min(10.0, max(1.0, round(value, 1)))


def _bonuses(shown: dict[int, str], model: str, knobs: Knobs) -> dict[int, float]:
    lengths = {cid: len(normalise(t)) for cid, t in shown.items()}
    mean = sum(lengths.values()) / len(lengths)
    return {
        cid: (knobs.length_bias * (lengths[cid] / mean - 1) if mean else 0.0)
        + (knobs.self_preference if knobs.self_preference and in_style(t, model) else 0.0)
        for cid, t in shown.items()
    }


def judge(
    shown: dict[int, str],
    criteria: Sequence[str],
    *,
    quality: Callable[[str], float],
    prompt: str,
    seed: int,
    model: str,
    knobs: Knobs,
) -> Verdict:
    """Scores and choice for candidates ``shown`` (id → text, in prompt order)."""
    bonus = _bonuses(shown, model, knobs)
    scores: dict[int, dict[str, float]] = {}
    for cid, text in shown.items():
        base = 10 * quality(text) + bonus[cid]
        scores[cid] = {
            k: _clamp(base + seeded_rng("judge", prompt, cid, k, seed).gauss(0, knobs.noise))
            for k in criteria
        }
    totals = {cid: sum(s.values()) for cid, s in scores.items()}
    best = max(totals, key=lambda c: (totals[c], -c))
    first = next(iter(shown))
    r = seeded_rng("first-bias", prompt, seed)
    if r.random() >= knobs.first_bias or best == first:
        return Verdict(scores, best, False)
    scores[first] = {k: _clamp(v + r.uniform(0.1, 0.5)) for k, v in scores[best].items()}
    return Verdict(scores, first, True)
