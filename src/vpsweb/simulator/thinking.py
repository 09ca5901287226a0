"""The simulator's fake chain of thought, as a reasoning model returns it beside its answer.

A reasoning model (DeepSeek's reasoner) sends ``reasoning_content`` with its answer;
vpsweb keeps it in the result. A few stock sentences per step, picked by a seeded
generator, are enough to exercise that path deterministically.
"""

from __future__ import annotations

from vpsweb.simulator.answers import recognise_step, source_lines
from vpsweb.simulator.quality import seeded_rng

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
    "revision_check": (
        "Two versions of the same poem: which one would I publish?",
        "The order they are shown in should not matter.",
    ),
    "translator_revision": (
        "The editor made several suggestions; I weigh each one.",
        "I keep the line count and stanza breaks of the source ({n} lines).",
        "Some suggestions would flatten the tone, so I reject those.",
    ),
}


def reasoning_for(text: str, seed: int) -> str:
    """A short fake chain of thought, as DeepSeek's reasoner returns beside the answer."""
    rng = seeded_rng("reasoning", text, seed)
    step = recognise_step(text)
    n = sum(1 for line in source_lines(text) if line)
    thoughts = _THOUGHTS.get(step or "", ("Let me think about what is being asked.",))
    picked = ["Okay, let me work through this."]
    picked += [t.format(n=n) for t in thoughts if rng.random() < 0.8] or [thoughts[0]]
    return " ".join(picked)
