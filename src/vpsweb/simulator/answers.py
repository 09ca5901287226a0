"""What the offline simulator answers: step recognition and deterministic XML answers.

The simulator recognises a step by the XML tags its prompt asks for (the prompts
in config/prompts/ always name them), and reads the source poem from the
<original_poem> block so that translations keep its lines and stanza breaks.
Everything is a pure function of (prompt, temperature, seed, model, knobs), so a
test can replay an answer and a benchmark run is reproducible. The ground truth
that makes selection measurable (hidden quality, planted defects, the judge's
biases, the writer's style signature) lives in ``quality``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vpsweb.domain.tokens import estimate_tokens
from vpsweb.simulator import quality, required_terms
from vpsweb.stages.table import STAGES

DEFAULT_CRITERIA = ("fidelity", "imagery", "musicality", "fluency")
UNRECOGNISED = "I am a simulator and did not recognise the step."
# A 200 answer that names none of the steps' tags: what a model says when it refuses.
MALFORMED = "I'm sorry, I cannot help with that request right now."
# Per stage (the stage table's names), a tag only its prompt asks for: how the
# simulator tells which step a prompt belongs to.
MARKERS: dict[str, str] = {
    "initial_translation": "initial_translation",
    "evaluation": "selected_index",
    "editor_review": "editor_suggestions",
    "translator_revision": "revised_translation",
    "revision_check": "preferred_version",
}

_rng = quality.seeded_rng
_EN_WORDS = quality.EN_WORDS
_ZH_CHARS = quality.ZH_CHARS
_POEM = re.compile(r"<original_poem>[ \t]*\n?(.*?)</original_poem>", re.DOTALL)
_CANDIDATE = re.compile(r'<candidate\s+id="(\d+)"\s*>(.*?)</candidate>', re.DOTALL)
_CRITERIA = re.compile(r"<criteria>(.*?)</criteria>", re.DOTALL)
_CRITERION = re.compile(r"^\s*-\s*([A-Za-z][\w-]*)\s*:", re.MULTILINE)
_LABEL = re.compile(r"\[L(\d+)\]")
_VERSION = re.compile(r'<version\s+id="(\d+)"\s*>(.*?)</version>', re.DOTALL)
_TRANSLATION = re.compile(r"<translation>(.*?)</translation>", re.DOTALL)
_CHINESE_TARGET = re.compile(
    r"(?:Target language:|into)\s+(?:Simplified\s+|Traditional\s+)?Chinese"
)


def recognise_step(text: str) -> str | None:
    """The stage a prompt belongs to, by the tag its answer format asks for (``<marker>``).

    Words cannot pass for it: vpsweb defuses tag-like text in poems and quoted answers
    (``‹tag›``). Later stages are tried first: their prompts quote earlier stages'
    output (the revision prompt carries the editor's suggestions), never the other way.
    """
    for s in reversed(STAGES):
        if f"<{MARKERS[s.name]}>" in text:
            return s.name
    return None


def truncated(content: str, step: str | None) -> str:
    """The answer as a model cut off at max_tokens leaves it: ending halfway through its
    main field."""
    marker = MARKERS.get(step or "", "")
    opening = f"<{marker}>"
    start = content.find(opening) if marker else -1
    if start < 0:
        return content[: max(1, len(content) // 2)]
    body = start + len(opening)
    end = content.find(f"</{marker}>", body)
    end = len(content) if end < 0 else end
    return content[: body + max(1, (end - body) // 2)]


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
    """Whether the prompt asks for Chinese (vpsweb names the target "Simplified Chinese")."""
    return bool(_CHINESE_TARGET.search(text))


def _render(lines: list[str], chinese: bool, rng: random.Random, model: str) -> str:
    """Random words (or characters) for every source line, blank lines kept; the first
    line carries ``model``'s style signature."""
    vocab = _ZH_CHARS if chinese else _EN_WORDS
    out: list[str] = []
    for i, line in enumerate(lines):
        if not line:
            out.append("")
            continue
        size = rng.randint(5, 7) if chinese else rng.randint(3, 6)
        tokens = [rng.choice(vocab) for _ in range(size)]
        if not any(out):
            tokens = quality.signed(tokens, vocab, model, rng)
        if chinese:
            stanza_end = i + 1 == len(lines) or not lines[i + 1]
            out.append("".join(tokens) + ("。" if stanza_end else "，"))
        else:
            out.append(" ".join(tokens))
    return "\n".join(out)


def pseudo_translation(text: str, rng: random.Random, model: str = "") -> str:
    """A line for every source line, blank lines kept as stanza breaks, in the target's
    script and in the writing model's style."""
    return _render(source_lines(text), _chinese(text), rng, model)


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


@dataclass
class Call:
    """One request as a builder sees it; a builder that plants a defect records it in
    ``planted`` (fingerprint, kind) for the server's /truth."""

    text: str
    rng: random.Random
    seed: int = 0
    model: str = ""
    knobs: quality.Knobs = field(default_factory=quality.Knobs)
    step: str = ""
    planted: tuple[str, str] | None = None


def _defective(call: Call, kind: str, translation: str) -> str:
    chinese, source = _chinese(call.text), source_lines(call.text)
    foreign = _render(source, not chinese, call.rng, call.model) if kind == "wrong_script" else ""
    bad = quality.plant(
        kind, translation=translation, source=source, foreign=foreign, chinese=chinese
    )
    call.planted = (quality.fingerprint(bad), kind)
    return bad


def _initial(call: Call) -> str:
    text, rng = call.text, call.rng
    title = _title(text, rng)
    poet = rng.choice(_EN_WORDS).title()
    translation = pseudo_translation(text, rng, call.model)
    kind = quality.planted_kind(text, call.seed, call.knobs.defect_rate, source_lines(text))
    if kind is not None:
        translation = _defective(call, kind, translation)
    else:
        translation, title, poet = _terms(call, translation, title, poet)
    return (
        f"<translated_poem_title>{title}</translated_poem_title>\n"
        f"<translated_poet_name>{poet}</translated_poet_name>\n"
        f"<initial_translation>\n{translation}\n</initial_translation>\n"
        f"<initial_translation_notes>Kept the images in order; chose "
        f"'{rng.choice(_EN_WORDS)}' for the key image.</initial_translation_notes>"
    )


def criteria_names(text: str) -> list[str]:
    """Criteria from the prompt's <criteria> block (``- name: description``), else defaults."""
    m = _CRITERIA.search(text)
    names = _CRITERION.findall(m.group(1)) if m else []
    return list(dict.fromkeys(names)) or list(DEFAULT_CRITERIA)


def candidates(text: str, pattern: re.Pattern[str] = _CANDIDATE) -> dict[int, str]:
    """Presented candidates (or ``_VERSION`` blocks) by id, in prompt order; the first
    block wins for a repeated id."""
    found: dict[int, str] = {}
    for cid, body in pattern.findall(text):
        found.setdefault(int(cid), body)
    return found


def shown_translations(blocks: dict[int, str]) -> dict[int, str]:
    """The text inside each block's <translation> (the whole block if it has none)."""
    return {
        cid: (m.group(1) if (m := _TRANSLATION.search(body)) else body).strip()
        for cid, body in blocks.items()
    }


def verdict(call: Call, shown: dict[int, str]) -> quality.Verdict:
    """The judge model of ``quality`` on this prompt: it sees planted defects as excellent."""
    source, chinese = source_lines(call.text), _chinese(call.text)
    return quality.judge(
        shown,
        criteria_names(call.text),
        quality=lambda t: quality.judged_quality(t, source, chinese),
        prompt=call.text,
        seed=call.seed,
        model=call.model,
        knobs=call.knobs,
    )


_ASPECTS = ("rhythm and diction", "imagery", "tone", "line length")


def _evaluation(call: Call) -> str:
    v = verdict(call, shown_translations(candidates(call.text)) or {1: ""})
    scores = [
        f'<score id="{cid}">' + ", ".join(f"{k}={x:g}" for k, x in vals.items()) + "</score>"
        for cid, vals in v.scores.items()
    ]
    aspect = call.rng.choice(_ASPECTS)
    return (
        f"<evaluation>\n<analysis>The candidates differ mostly in {aspect}.</analysis>\n"
        "<scores>\n" + "\n".join(scores) + "\n</scores>\n"
        f"<selected_index>{v.chosen}</selected_index>\n"
        f"<rationale>Candidate {v.chosen} keeps the images and reads best aloud.</rationale>\n"
        "</evaluation>"
    )


def _revision_check(call: Call) -> str:
    """Which of two versions the judge prefers: the same judge model and biases as the
    evaluation, so a revision that is worse than its candidate can be caught."""
    v = verdict(call, shown_translations(candidates(call.text, _VERSION)) or {1: "", 2: ""})
    other = next((vid for vid in v.scores if vid != v.chosen), v.chosen)
    aspect = call.rng.choice(_ASPECTS)
    return (
        "<revision_check>\n"
        f"<preferred_version>{v.chosen}</preferred_version>\n"
        f"<reason>Version {v.chosen} is stronger than version {other} in {aspect}.</reason>\n"
        "</revision_check>"
    )


def _labels(text: str) -> list[int]:
    """Line labels of the source poem; the instructions' own examples ([L1], [L2], ...) do
    not count when the poem block carries labels."""
    block = poem_block(text)
    found = _LABEL.findall(block) if block else []
    return sorted({int(n) for n in found or _LABEL.findall(text)}) or [1]


def _review(call: Call) -> str:
    text, rng = call.text, call.rng
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


def _revision(call: Call) -> str:
    """A fresh text in the writer's style: its hidden quality is its own, so a revision
    is sometimes worse than the candidate it revises."""
    text, rng = call.text, call.rng
    title, poet = _title(text, rng), rng.choice(_EN_WORDS).title()
    poem, title, poet = _terms(call, pseudo_translation(text, rng, call.model), title, poet)
    return (
        f"<refined_translated_poem_title>{title}</refined_translated_poem_title>\n"
        f"<refined_translated_poet_name>{poet}</refined_translated_poet_name>\n"
        f"<revised_translation>\n{poem}\n</revised_translation>\n"
        "<revised_translation_notes>Took most suggestions; kept the line breaks."
        "</revised_translation_notes>"
    )


def _terms(call: Call, poem: str, title: str, poet: str) -> tuple[str, str, str]:
    """The prompt's required terms written in, or missed (``required_terms``)."""
    source, chinese = source_lines(call.text), _chinese(call.text)
    return required_terms.honour(call.text, call.model, source, chinese, (poem, title, poet))


def _generic(call: Call) -> str:
    """A stage with no builder of its own: its marker tag around a pseudo-translation."""
    step = call.step or "answer"
    marker = MARKERS.get(step, step)
    return f"<{marker}>\n{pseudo_translation(call.text, call.rng, call.model)}\n</{marker}>"


_BUILDERS: dict[str, Callable[[Call], str]] = {
    "initial_translation": _initial,
    "evaluation": _evaluation,
    "editor_review": _review,
    "translator_revision": _revision,
    "revision_check": _revision_check,
}


@dataclass(frozen=True)
class Answer:
    step: str | None
    content: str
    planted: tuple[str, str] | None = None  # (fingerprint, kind) of a planted defect


def respond(
    text: str,
    *,
    temperature: float,
    seed: int,
    model: str = "",
    knobs: quality.Knobs | None = None,
    step: str | None = None,
) -> Answer:
    """The answer to a prompt, deterministic for its arguments. ``model`` is the request's
    model name (the writer's style, the judge's self-preference); ``step`` overrides
    recognition, for stages the table does not have yet."""
    step = step or recognise_step(text)
    if step is None:
        return Answer(None, UNRECOGNISED)
    rng = _rng(text, temperature, seed)
    call = Call(text, rng, seed, model, knobs or quality.Knobs(), step)
    content = _BUILDERS.get(step, _generic)(call)
    return Answer(step, _wrap(content, rng), call.planted)


def answer(
    text: str,
    *,
    temperature: float,
    seed: int,
    model: str = "",
    knobs: quality.Knobs | None = None,
) -> tuple[str | None, str]:
    """(step, content) for a prompt; see ``respond``."""
    got = respond(text, temperature=temperature, seed=seed, model=model, knobs=knobs)
    return got.step, got.content
