"""What the offline simulator answers: step recognition and deterministic XML answers.

The simulator recognises a step by the XML tags its prompt asks for (the prompts
in config/prompts/ always name them), and reads the source poem from the
<original_poem> block so that translations keep its lines and stanza breaks.
Everything is a pure function of (prompt, temperature, seed), so a test can
replay an answer and a benchmark run is reproducible.
"""

from __future__ import annotations

import hashlib
import random
import re

from vpsweb.stages.table import STAGES
from vpsweb.tokens import estimate_tokens

DEFAULT_CRITERIA = ("fidelity", "imagery", "musicality", "fluency")
UNRECOGNISED = "I am a simulator and did not recognise the step."
# A 200 answer that names none of the steps' tags: what a model says when it refuses.
MALFORMED = "I'm sorry, I cannot help with that request right now."

_EN_WORDS = (
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
)
_ZH_CHARS = "雾港静猫足城暮光河石月霜乡路林黄晨叹风叶影窗灯远轻旧明山水云花夜春秋"
_POEM = re.compile(r"<original_poem>[ \t]*\n?(.*?)</original_poem>", re.DOTALL)
_CANDIDATE = re.compile(r'<candidate\s+id="(\d+)"\s*>(.*?)</candidate>', re.DOTALL)
_CRITERIA = re.compile(r"<criteria>(.*?)</criteria>", re.DOTALL)
_CRITERION = re.compile(r"^\s*-\s*([A-Za-z][\w-]*)\s*:", re.MULTILINE)
_LABEL = re.compile(r"\[L(\d+)\]")


def recognise_step(text: str) -> str | None:
    """The stage a prompt belongs to, by the tag its answer format asks for (``<marker>``).

    Words cannot pass for it: vpsweb defuses tag-like text in poems and quoted answers
    (``‹tag›``). Later stages are tried first: their prompts quote earlier stages'
    output (the revision prompt carries the editor's suggestions), never the other way.
    """
    for s in reversed(STAGES):
        if f"<{s.marker}>" in text:
            return s.name
    return None


def truncated(content: str, step: str | None) -> str:
    """The answer as a model cut off at max_tokens leaves it: ending halfway through its
    main field."""
    marker = next((s.marker for s in STAGES if s.name == step), "")
    opening = f"<{marker}>"
    start = content.find(opening) if marker else -1
    if start < 0:
        return content[: max(1, len(content) // 2)]
    body = start + len(opening)
    end = content.find(f"</{marker}>", body)
    end = len(content) if end < 0 else end
    return content[: body + max(1, (end - body) // 2)]


def _rng(*parts: object) -> random.Random:
    """A generator seeded by a stable hash: Python's hash() is salted per process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def count_tokens(text: str) -> int:
    """Usage as the simulator reports it: the same estimate vpsweb sizes jobs with."""
    return estimate_tokens(text)


def poem_block(text: str) -> str | None:
    """The poem the prompt carries: its last <original_poem> block (the system prompt may
    name the delimiters in passing)."""
    blocks = _POEM.findall(text)
    return blocks[-1] if blocks else None


def source_lines(text: str) -> list[str]:
    """The source poem's lines without [Ln] labels; blank lines are stanza breaks."""
    body = poem_block(text) or "line one\nline two"
    lines = [_LABEL.sub("", line).strip() for line in body.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines or ["line one"]


def _chinese(text: str) -> bool:
    return "Target language: Chinese" in text or "into Chinese" in text


def pseudo_translation(text: str, rng: random.Random) -> str:
    """A line for every source line, blank lines kept as stanza breaks."""
    chinese = _chinese(text)
    lines = source_lines(text)
    out = []
    for i, line in enumerate(lines):
        if not line:
            out.append("")
        elif chinese:
            stanza_end = i + 1 == len(lines) or not lines[i + 1]
            chars = "".join(rng.choice(_ZH_CHARS) for _ in range(rng.randint(5, 7)))
            out.append(chars + ("。" if stanza_end else "，"))
        else:
            out.append(" ".join(rng.choice(_EN_WORDS) for _ in range(rng.randint(3, 6))))
    return "\n".join(out)


def _title(text: str, rng: random.Random) -> str:
    if _chinese(text):
        return "".join(rng.choice(_ZH_CHARS) for _ in range(2))
    return " ".join(rng.choice(_EN_WORDS) for _ in range(2)).title()


def _wrap(body: str, rng: random.Random) -> str:
    """Sometimes prose or a code fence around the tags, as real models do."""
    style = rng.randrange(4)
    if style == 1:
        return f"Here is my answer.\n\n{body}\n\nI hope this helps."
    if style == 2:
        return f"```xml\n{body}\n```"
    if style == 3:
        return f"{body}\n\nLet me know if you would like another version."
    return body


def _initial(text: str, rng: random.Random) -> str:
    return (
        f"<translated_poem_title>{_title(text, rng)}</translated_poem_title>\n"
        f"<translated_poet_name>{rng.choice(_EN_WORDS).title()}</translated_poet_name>\n"
        f"<initial_translation>\n{pseudo_translation(text, rng)}\n</initial_translation>\n"
        f"<initial_translation_notes>Kept the images in order; chose "
        f"'{rng.choice(_EN_WORDS)}' for the key image.</initial_translation_notes>"
    )


def criteria_names(text: str) -> list[str]:
    """Criteria from the prompt's <criteria> block (``- name: description``), else defaults."""
    m = _CRITERIA.search(text)
    names = _CRITERION.findall(m.group(1)) if m else []
    return list(dict.fromkeys(names)) or list(DEFAULT_CRITERIA)


def candidates(text: str) -> dict[int, str]:
    """Presented candidates by id, in prompt order; the first block wins for a repeated id."""
    found: dict[int, str] = {}
    for cid, body in _CANDIDATE.findall(text):
        found.setdefault(int(cid), body)
    return found


def candidate_scores(body: str, names: list[str]) -> dict[str, int]:
    """Scores from the candidate's own text, so the judge agrees with itself across runs
    whatever order the candidates are shown in."""
    r = _rng("score", body.strip())
    return {n: r.randint(3, 10) for n in names}


def _evaluation(text: str, rng: random.Random) -> str:
    shown = candidates(text) or {1: ""}
    names = criteria_names(text)
    scores, totals = [], {}
    for cid, body in shown.items():
        vals = candidate_scores(body, names)
        totals[cid] = sum(vals.values())
        pairs = ", ".join(f"{k}={v}" for k, v in vals.items())
        scores.append(f'<score id="{cid}">{pairs}</score>')
    best = max(totals, key=lambda c: (totals[c], -c))  # ties: the lowest id
    aspect = rng.choice(["rhythm and diction", "imagery", "tone", "line length"])
    return (
        f"<evaluation>\n<analysis>The candidates differ mostly in {aspect}.</analysis>\n"
        "<scores>\n" + "\n".join(scores) + "\n</scores>\n"
        f"<selected_index>{best}</selected_index>\n"
        f"<rationale>Candidate {best} keeps the images and reads best aloud.</rationale>\n"
        "</evaluation>"
    )


def _labels(text: str) -> list[int]:
    """Line labels of the source poem; the instructions' own examples ([L1], [L2], ...) do
    not count when the poem block carries labels."""
    block = poem_block(text)
    found = _LABEL.findall(block) if block else []
    return sorted({int(n) for n in found or _LABEL.findall(text)}) or [1]


def _review(text: str, rng: random.Random) -> str:
    labels = _labels(text)
    count = rng.randint(2, 4)
    if len(labels) >= count:
        picks = sorted(rng.sample(labels, count))
    else:  # a short poem: some lines get two suggestions
        picks = sorted(rng.choice(labels) for _ in range(count))
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


def _generic(text: str, rng: random.Random) -> str:
    """A stage with no builder of its own: its marker tag around a pseudo-translation."""
    step = recognise_step(text) or "answer"
    marker = next((s.marker for s in STAGES if s.name == step), step)
    return f"<{marker}>\n{pseudo_translation(text, rng)}\n</{marker}>"


_BUILDERS = {
    "initial_translation": _initial,
    "evaluation": _evaluation,
    "editor_review": _review,
    "translator_revision": _revision,
}


def answer(text: str, *, temperature: float, seed: int) -> tuple[str | None, str]:
    """(step, content) for a prompt; deterministic for (text, temperature, seed)."""
    step = recognise_step(text)
    if step is None:
        return None, UNRECOGNISED
    rng = _rng(text, temperature, seed)
    return step, _wrap(_BUILDERS.get(step, _generic)(text, rng), rng)


_THOUGHTS = {
    "initial_translation": (
        "First I read the poem line by line and note its images.",
        "The source has {n} lines, so the translation needs {n} lines too.",
        "The strategy hint matters: I should weigh sound against literal sense.",
    ),
    "evaluation": (
        "I compare the candidates criterion by criterion.",
        "Position in the list should not matter, only the text.",
        "One candidate keeps the images better; I check its rhythm.",
    ),
    "editor_review": (
        "I read the translation against the labelled source lines.",
        "Which lines lose an image or add one that is not there?",
        "I keep the suggestions concrete and point at line labels.",
    ),
    "translator_revision": (
        "The editor made several suggestions; I weigh each one.",
        "I keep the line count and stanza breaks of the source ({n} lines).",
        "Some suggestions would flatten the tone, so I reject those.",
    ),
}


def reasoning_for(text: str, seed: int) -> str:
    """A short fake chain of thought, as DeepSeek's reasoner returns beside the answer."""
    rng = _rng("reasoning", text, seed)
    step = recognise_step(text)
    n = sum(1 for line in source_lines(text) if line)
    thoughts = _THOUGHTS.get(step or "", ("Let me think about what is being asked.",))
    picked = ["Okay, let me work through this."]
    picked += [t.format(n=n) for t in thoughts if rng.random() < 0.8] or [thoughts[0]]
    return " ".join(picked)
