"""The length gate on poems of one to four lines (issue 21, point 16).

A two-line poem with N=8 failed outright ("no candidate passed the checks before
judging: 2.99x the length expected..."): for a line or two, "expected" is a handful
of letters and an honest, fuller translation is easily three times it. Padding must
still be caught: the selection bench plants it and counts on the gate.
"""

from __future__ import annotations

import pytest

from vpsweb.config import load_config
from vpsweb.config.schema import GateSettings
from vpsweb.domain.gates import check
from vpsweb.simulator import answers, quality
from vpsweb.stages.candidate import parse_answer

GATES: GateSettings = load_config().pipeline.gates

# (source_lang, target_lang, source, [realistic translations: terse to full])
SHORT = [
    ("en", "zh-CN", "Silence.", ["寂静。", "四下一片寂静无声。"]),
    (
        "en",
        "zh-CN",
        "I'm nobody! Who are you?",
        ["我是无名之辈！你是谁？", "我是个无名小卒！那么你又是谁呢？"],
    ),
    (
        "en",
        "zh-CN",
        "The fog comes\non little cat feet.",
        ["雾来了\n踮着猫的细步。", "雾悄悄地来临，\n踏着小猫般轻盈的脚步。"],
    ),
    (
        "en",
        "zh-CN",
        "An old silent pond\nA frog jumps into the pond—\nSplash! Silence again.",
        [
            "古池\n青蛙跳入——\n水声响。",
            "古老而静谧的池塘，\n一只青蛙扑通跳进池中——\n水花四溅！随后又复归一片寂静。",
        ],
    ),
    (
        "en",
        "zh-CN",
        "so much depends\nupon\na red wheel\nbarrow",
        [
            "那么多东西\n依赖\n一辆红色手推\n车",
            "有那么多的东西\n全都依赖于\n一辆红彤彤的\n独轮手推车",
        ],
    ),
    (
        "zh-CN",
        "en",
        "静。",
        ["Stillness.", "All around, a deep and utter silence."],
    ),
    (
        "zh-CN",
        "en",
        "白日依山尽",
        ["The white sun sets", "The pale white sun slowly sinks behind the distant mountains"],
    ),
    (
        "zh-CN",
        "en",
        "床前明月光，\n疑是地上霜。",
        [
            "Moonlight before my bed,\nlike frost on the ground.",
            "Before my bed the bright moonlight softly glows,\n"
            "and I wonder whether it is frost upon the ground.",
        ],
    ),
    (
        "zh-CN",
        "en",
        "春眠不觉晓，\n处处闻啼鸟。\n夜来风雨声，\n花落知多少。",
        [
            "Spring sleep, no dawn;\nbirds everywhere.\nWind and rain at night;\nhow many fell?",
            "In spring I sleep and never notice the dawn,\n"
            "and everywhere around me I hear the birds singing.\n"
            "All through the night came the sound of wind and rain;\n"
            "how many of the blossoms must have fallen, I wonder?",
        ],
    ),
    ("pl", "en", "Kocham cię.", ["I love you.", "I love you, I love you so very much."]),
    (
        "pl",
        "en",
        "Nic dwa razy się nie zdarza\ni nie zdarzy.",
        [
            "Nothing happens twice\nand never will.",
            "Nothing can ever happen twice,\nand nothing ever will.",
        ],
    ),
    (
        "pl",
        "en",
        "Nic dwa razy się nie zdarza\ni nie zdarzy. Z tej przyczyny\n"
        "zrodziliśmy się bez wprawy\ni pomrzemy bez rutyny.",
        [
            "Nothing can ever happen twice.\nIn consequence, the sorry fact is\n"
            "that we arrive here improvised\nand leave without the chance to practice.",
        ],
    ),
    ("pl", "zh-CN", "Kocham cię.", ["我爱你。", "我爱你，深深地爱着你。"]),
    (
        "pl",
        "zh-CN",
        "Nic dwa razy się nie zdarza\ni nie zdarzy.",
        [
            "没有什么会发生两次\n也不会再发生。",
            "世间没有任何事情会发生第二次，\n将来也永远不会再次发生。",
        ],
    ),
]
CASES = [(s, t, src, tr) for s, t, src, trs in SHORT for tr in trs]
IDS = [f"{s}>{t}:{src.splitlines()[0][:12]}:{len(tr)}" for s, t, src, tr in CASES]


def gated(text: str, source: str, source_lang: str, target_lang: str) -> list[str]:
    return check(text, source=source, source_lang=source_lang, target_lang=target_lang, gates=GATES)


@pytest.mark.parametrize(("source_lang", "target_lang", "source", "text"), CASES, ids=IDS)
def test_honest_translations_of_short_poems_pass(
    source_lang: str, target_lang: str, source: str, text: str
) -> None:
    assert gated(text, source, source_lang, target_lang) == []


@pytest.mark.parametrize(("source_lang", "target_lang", "source", "text"), CASES, ids=IDS)
def test_padded_translations_of_short_poems_are_still_caught(
    source_lang: str, target_lang: str, source: str, text: str
) -> None:
    padded = quality.plant(
        "padding",
        translation=text,
        source=source.splitlines(),
        foreign="",
        chinese=target_lang == "zh-CN",
    )
    reasons = gated(padded, source, source_lang, target_lang)
    assert any("the length expected" in r for r in reasons), (padded, reasons)


def _prompt(source: str, target_lang: str) -> str:
    """What the simulator reads of a candidate's prompt: the target and the poem."""
    target = "Simplified Chinese" if target_lang == "zh-CN" else "English"
    return (
        f"Target language: {target}\n<original_poem>\n{source}\n</original_poem>\n"
        "Answer with <initial_translation>...</initial_translation>."
    )


@pytest.mark.parametrize(
    ("source_lang", "target_lang", "source"),
    [(s, t, src) for s, t, src, _ in SHORT],
    ids=[f"{s}>{t}:{src.splitlines()[0][:12]}" for s, t, src, _ in SHORT],
)
def test_the_simulators_short_candidates_are_gated_exactly_when_planted(
    source_lang: str, target_lang: str, source: str
) -> None:
    """Over many seeds: no honest candidate is gated, every planted defect is."""
    knobs = quality.Knobs(defect_rate=0.3)
    planted = 0
    for seed in range(150):
        got = answers.respond(_prompt(source, target_lang), temperature=0.7, seed=seed, knobs=knobs)
        text = parse_answer(got.content)["initial_translation"]
        reasons = gated(text, source, source_lang, target_lang)
        if got.planted is None:
            assert reasons == [], (seed, text, reasons)
            continue
        planted += 1
        if got.planted[1] == "dropped_lines" and len(source.splitlines()) == 2:
            continue  # one line of two is within the line gate's 0.5x: not this gate's job
        assert reasons, (seed, got.planted[1], text)
        if got.planted[1] == "padding":
            assert any("the length expected" in r for r in reasons), (seed, text, reasons)
    assert planted > 20
