"""What the offline simulator answers: step recognition and deterministic XML answers.

The simulator recognises a step by the XML tags its prompt asks for (the prompts
in config/prompts/ always name them), and reads the source poem from the
<original_poem> block so that translations keep its lines and stanza breaks.
Everything is a pure function of (prompt, temperature, seed).
"""

from __future__ import annotations

import hashlib
import random
import re

STEP_MARKERS = (
    ("revised_translation", "translator_revision"),
    ("selected_index", "evaluation"),
    ("editor_suggestions", "editor_review"),
    ("initial_translation", "initial_translation"),
)
DEFAULT_CRITERIA = ("fidelity", "imagery", "musicality", "fluency")

_EN_WORDS = tuple(
    [
        "mist",
        "harbor",
        "silent",
        "cat",
        "feet",
        "city",
        "evening",
        "light",
        "river",
        "stone",
        "moon",
        "frost",
        "home",
        "road",
        "wood",
        "yellow",
        "morning",
        "sigh",
        "wind",
        "leaf",
        "shadow",
        "window",
        "lantern",
        "quiet",
        "far",
        "gentle",
        "old",
        "bright",
    ]
)
_ZH_CHARS = "雾港静猫足城暮光河石月霜乡路林黄晨叹风叶影窗灯远轻旧明山水云花夜春秋"
_POEM = re.compile(r"<original_poem>\s*\n?(.*?)</original_poem>", re.DOTALL)
_CANDIDATE = re.compile(r'<candidate id="(\d+)">(.*?)</candidate>', re.DOTALL)
_CRITERIA = re.compile(r"<criteria>(.*?)</criteria>", re.DOTALL)
_LABEL = re.compile(r"\[L(\d+)\]")


def recognise_step(text: str) -> str | None:
    for marker, step in STEP_MARKERS:
        if marker in text:
            return step
    return None


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def count_tokens(text: str) -> int:
    """Rough usage: a CJK character is a token, other text about four characters."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return max(1, cjk + (len(text) - cjk + 3) // 4)


def source_lines(text: str) -> list[str]:
    m = _POEM.search(text)
    body = m.group(1) if m else "line one\nline two"
    return [_LABEL.sub("", line).strip() for line in body.strip("\n").splitlines()]


def pseudo_translation(text: str, rng: random.Random) -> str:
    """A line for every source line, blank lines kept as stanza breaks."""
    chinese = _chinese(text)
    out = []
    for line in source_lines(text):
        if not line:
            out.append("")
        elif chinese:
            out.append("".join(rng.choice(_ZH_CHARS) for _ in range(rng.randint(5, 7))) + "，")
        else:
            out.append(" ".join(rng.choice(_EN_WORDS) for _ in range(rng.randint(3, 6))))
    return "\n".join(out)


def _chinese(text: str) -> bool:
    return "Target language: Chinese" in text or "into Chinese" in text


def _title(text: str, rng: random.Random) -> str:
    if _chinese(text):
        return "".join(rng.choice(_ZH_CHARS) for _ in range(2))
    return " ".join(rng.choice(_EN_WORDS) for _ in range(2)).title()


def _wrap(body: str, rng: random.Random) -> str:
    """Sometimes prose around the tags, as real models do."""
    style = rng.randrange(3)
    if style == 1:
        return f"Here is my answer.\n\n{body}\n\nI hope this helps."
    if style == 2:
        return f"```xml\n{body}\n```"
    return body


def _initial(text: str, rng: random.Random) -> str:
    return (
        f"<translated_poem_title>{_title(text, rng)}</translated_poem_title>\n"
        f"<translated_poet_name>{rng.choice(_EN_WORDS).title()}</translated_poet_name>\n"
        f"<initial_translation>\n{pseudo_translation(text, rng)}\n</initial_translation>\n"
        f"<initial_translation_notes>Kept the images in order; chose "
        f"'{rng.choice(_EN_WORDS)}' for the key image.</initial_translation_notes>"
    )


def _criteria(text: str) -> list[str]:
    m = _CRITERIA.search(text)
    if not m:
        return list(DEFAULT_CRITERIA)
    names = re.findall(r"^\s*-\s*([a-z0-9_]+)\s*:", m.group(1), re.MULTILINE)
    return names or list(DEFAULT_CRITERIA)


def _evaluation(text: str, rng: random.Random) -> str:
    candidates = [(int(cid), body) for cid, body in _CANDIDATE.findall(text)] or [(1, "")]
    names = _criteria(text)
    scores, totals = [], {}
    for cid, body in candidates:
        r = _rng("score", body)
        vals = {n: r.randint(5, 10) for n in names}
        totals[cid] = sum(vals.values())
        scores.append(
            f'<score id="{cid}">' + ", ".join(f"{k}={v}" for k, v in vals.items()) + "</score>"
        )
    best = max(totals, key=lambda c: (totals[c], -c))
    return (
        "<evaluation>\n<analysis>The candidates differ mostly in rhythm and diction.</analysis>\n"
        "<scores>\n" + "\n".join(scores) + "\n</scores>\n"
        f"<selected_index>{best}</selected_index>\n"
        f"<rationale>Candidate {best} keeps the images and reads best aloud.</rationale>\n"
        "</evaluation>"
    )


def _review(text: str, rng: random.Random) -> str:
    labels = sorted({int(n) for n in _LABEL.findall(text)}) or [1]
    picks = sorted(rng.sample(labels, min(len(labels), rng.randint(2, 4))))
    items = [
        f"{i}. [L{n}] Consider '{rng.choice(_EN_WORDS)}' here to keep the tone; "
        f"the current wording is {rng.choice(['flat', 'wordy', 'too literal'])}."
        for i, n in enumerate(picks, 1)
    ]
    return "<editor_suggestions>\n" + "\n".join(items) + "\n</editor_suggestions>"


def _revision(text: str, rng: random.Random) -> str:
    return (
        f"<refined_translated_poem_title>{_title(text, rng)}"
        "</refined_translated_poem_title>\n"
        f"<refined_translated_poet_name>{rng.choice(_EN_WORDS).title()}"
        "</refined_translated_poet_name>\n"
        f"<revised_translation>\n{pseudo_translation(text, rng)}\n</revised_translation>\n"
        "<revised_translation_notes>Took most suggestions; kept the line breaks."
        "</revised_translation_notes>"
    )


_BUILDERS = {
    "initial_translation": _initial,
    "evaluation": _evaluation,
    "editor_review": _review,
    "translator_revision": _revision,
}

MALFORMED = "I'm sorry, I cannot help with that request right now."


def answer(text: str, *, temperature: float, seed: int) -> tuple[str | None, str]:
    """(step, content) for a prompt; deterministic for (text, temperature, seed)."""
    step = recognise_step(text)
    rng = _rng(text, temperature, seed)
    if step is None:
        return None, "I am a simulator and did not recognise the step."
    return step, _wrap(_BUILDERS[step](text, rng), rng)


def reasoning_for(text: str, seed: int) -> str:
    rng = _rng("reasoning", text, seed)
    return ("Let me read the poem line by line. " * rng.randint(1, 3)).strip()
