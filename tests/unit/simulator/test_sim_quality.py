"""The simulator's ground truth: hidden quality, planted defects, the judge and its biases.

Selection can only be measured against a right answer; these tests pin down that the
right answer exists (an unbiased judge finds it), that each bias moves the judge the
way its knob says, and that every planted defect is recorded for /truth.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from tests.helpers.poems import JING_YE_SI as ZH_POEM
from tests.helpers.poems import POEM
from vpsweb import settings
from vpsweb.config import load_config
from vpsweb.domain.models import StrategyDials
from vpsweb.domain.parsing import extract_fields, extract_tag, parse_scores, parse_selected_index
from vpsweb.domain.prompts import dial_variables, render
from vpsweb.simulator import answers, quality
from vpsweb.simulator.options import SimulatorOptions, add_arguments, options_from
from vpsweb.simulator.server import build_app

CJK = re.compile(r"[\u4e00-\u9fff]")


def initial_prompt(hint: str, *, poem: str = POEM, target: str = "Simplified Chinese") -> str:
    """The parts of an initial-translation prompt the simulator reads."""
    return (
        f"Translate from English into {target}.\nTarget language: {target}\n"
        f"Strategy: {hint}\n<original_poem>\n{poem}\n</original_poem>\n"
        "<initial_translation></initial_translation>"
    )


def honest(i: int, *, model: str = "deepseek-chat", target: str = "Simplified Chinese") -> str:
    """An honest simulated translation (distinct for each i)."""
    text = initial_prompt(f"hint {i}", target=target)
    return answers.pseudo_translation(text, random.Random(i), model)


def eval_prompt(texts: list[str], *, salt: str = "", target: str = "Simplified Chinese") -> str:
    blocks = "\n".join(
        f'<candidate id="{i}">\n<title>t</title>\n<translation>\n{t}\n</translation>\n</candidate>'
        for i, t in enumerate(texts, 1)
    )
    return (
        f"Target language: {target}\n<original_poem>\n{POEM}\n</original_poem>\n"
        "<criteria>\n- fidelity: f\n- imagery: i\n- musicality: m\n- fluency: f\n</criteria>\n"
        f"{blocks}\n{salt}\n<evaluation><selected_index></selected_index></evaluation>"
    )


def judge(
    texts: list[str], *, model: str = "deepseek-reasoner", salt: str = "", **knobs: Any
) -> tuple[int, dict[int, dict[str, float]]]:
    got = answers.respond(
        eval_prompt(texts, salt=salt),
        temperature=0.2,
        seed=0,
        model=model,
        knobs=quality.Knobs(**knobs),
    )
    assert got.step == "evaluation"
    return parse_selected_index(got.content), parse_scores(got.content)


def _total(scores: dict[str, float]) -> float:
    return sum(scores.values())


# --- hidden quality -------------------------------------------------------------------


def test_hidden_quality_is_a_deterministic_function_of_the_normalised_text():
    seen = [quality.hidden_quality(honest(i)) for i in range(200)]
    assert all(0.35 <= q <= 0.90 for q in seen)
    assert len(set(seen)) > 190  # it tells candidates apart
    text = honest(1)
    messy = "\n\n  " + text.replace("\n", "  \n\n") + "\n  \n"
    assert quality.hidden_quality(messy) == quality.hidden_quality(text)
    assert quality.fingerprint(messy) == quality.fingerprint(text)
    assert quality.fingerprint(text + "x") != quality.fingerprint(text)


def test_answers_are_deterministic_with_every_knob():
    knobs = quality.Knobs(defect_rate=0.5, first_bias=0.5, length_bias=1, self_preference=1)
    for text in (initial_prompt("a"), eval_prompt([honest(1), honest(2)])):
        first = answers.respond(text, temperature=0.5, seed=3, model="qwen-max", knobs=knobs)
        again = answers.respond(text, temperature=0.5, seed=3, model="qwen-max", knobs=knobs)
        assert first == again


def test_simplified_chinese_targets_get_chinese():
    text = answers.pseudo_translation(initial_prompt("a"), random.Random(0))
    assert all(CJK.search(line) for line in text.splitlines() if line)


# --- planted defects ------------------------------------------------------------------


def _planted(kind: str, *, poem: str = POEM, target: str = "Simplified Chinese") -> tuple:
    """The first prompt whose candidate is planted with ``kind`` (rate 1)."""
    knobs = quality.Knobs(defect_rate=1.0)
    for i in range(200):
        text = initial_prompt(f"hint {i}", poem=poem, target=target)
        got = answers.respond(text, temperature=0.7, seed=0, knobs=knobs)
        if got.planted and got.planted[1] == kind:
            return text, got
    raise AssertionError(f"no {kind} defect in 200 prompts")


@pytest.mark.parametrize(
    ("poem", "target"), [(POEM, "Simplified Chinese"), (ZH_POEM, "English")], ids=["en-zh", "zh-en"]
)
@pytest.mark.parametrize("kind", quality.DEFECT_KINDS)
def test_each_defect_kind_is_planted_parsable_and_recorded(kind, poem, target):
    text, got = _planted(kind, poem=poem, target=target)
    fields = extract_fields(
        got.content, ["initial_translation", "translated_poem_title"], what="initial translation"
    )
    translation = fields["initial_translation"]
    chinese = target != "English"
    source = answers.source_lines(text)
    assert got.planted == (quality.fingerprint(translation), kind)
    assert quality.defect_kind(translation, source, chinese) == kind
    assert quality.judged_quality(translation, source, chinese) == quality.DEFECT_QUALITY
    lines = quality.normalise(translation).splitlines()
    honest_text = answers.pseudo_translation(text, random.Random(0))
    if kind == "copy":
        assert lines == [line.strip() for line in poem.splitlines() if line.strip()]
    elif kind == "wrong_script":
        assert bool(CJK.search(translation)) is not chinese
    elif kind == "dropped_lines":
        assert len(lines) == 1
    elif kind == "padding":
        assert len(quality.normalise(translation)) >= 4 * len(quality.normalise(honest_text))
        assert len(lines) == len(quality.normalise(honest_text).splitlines())
    else:
        assert "<translated_poem_title>" in translation or lines[0].startswith("[L1]")
        assert fields["translated_poem_title"]  # the title still parses


def test_no_defects_without_the_knob_and_honest_texts_are_never_mistaken():
    for i in range(100):
        text = initial_prompt(f"hint {i}")
        assert answers.respond(text, temperature=0.7, seed=0).planted is None
        assert quality.defect_kind(honest(i), answers.source_lines(text), True) is None
        zh = initial_prompt(f"hint {i}", poem=ZH_POEM, target="English")
        source = answers.source_lines(zh)
        english = answers.pseudo_translation(zh, random.Random(i))
        assert quality.defect_kind(english, source, False) is None


def test_a_rate_plants_about_that_share_and_one_line_poems_keep_their_line():
    knobs = quality.Knobs(defect_rate=0.3)
    planted = [
        answers.respond(
            initial_prompt(f"h{i}", poem="one line"), temperature=0, seed=0, knobs=knobs
        )
        for i in range(400)
    ]
    kinds = [p.planted[1] for p in planted if p.planted]
    assert 0.22 < len(kinds) / 400 < 0.38
    assert "dropped_lines" not in kinds  # it would look like an honest one-line poem


def test_the_server_records_planted_defects_at_truth_until_reset():
    async def scenario() -> tuple[dict, dict, dict]:
        fingerprints: dict[str, int] = {}
        app = build_app(SimulatorOptions(defect_rate=1.0))
        async with TestClient(TestServer(app)) as client:
            for i in range(3):
                message = {"role": "user", "content": initial_prompt(f"hint {i}")}
                body = {"model": "deepseek-chat", "messages": [message]}
                resp = await client.post("/v1/chat/completions", json=body)
                content = (await resp.json())["choices"][0]["message"]["content"]
                translation = extract_tag(content, "initial_translation") or ""
                fingerprints[quality.fingerprint(translation)] = i
            truth = await (await client.get("/truth")).json()
            await client.post("/stats/reset")
            after = await (await client.get("/truth")).json()
            return truth, after, fingerprints

    truth, after, fps = asyncio.run(scenario())
    assert set(truth["defects"]) == set(fps)
    assert set(truth["defects"].values()) <= set(quality.DEFECT_KINDS)
    assert after == {"defects": {}}


# --- the judge ------------------------------------------------------------------------


def _sets(count: int, size: int = 3) -> list[list[str]]:
    """Candidate sets whose qualities differ by at least 0.03."""
    found: list[list[str]] = []
    i = 0
    while len(found) < count:
        texts = [honest(i + k) for k in range(size)]
        i += size
        qs = sorted(quality.hidden_quality(t) for t in texts)
        if min(b - a for a, b in itertools.pairwise(qs)) >= 0.03:
            found.append(texts)
    return found


def test_the_unbiased_judge_finds_the_true_best():
    sets = _sets(150)
    right = 0
    for texts in sets:
        chosen, scores = judge(texts)
        assert set(scores) == {1, 2, 3}
        assert all(1 <= v <= 10 for s in scores.values() for v in s.values())
        best = max(range(3), key=lambda k: quality.hidden_quality(texts[k]))
        right += chosen == best + 1
    assert right / len(sets) >= 0.93


def test_the_judge_sees_planted_defects_as_excellent():
    _, got = _planted("padding")
    bad = extract_tag(got.content, "initial_translation") or ""
    wins = sum(judge([honest(i), bad, honest(i + 1)])[0] == 2 for i in range(0, 60, 2))
    assert wins >= 28


def test_full_first_position_bias_always_picks_the_first_shown():
    flipped = 0
    for n, texts in enumerate(_sets(60)):
        unbiased, _ = judge(texts, salt=str(n))
        chosen, scores = judge(texts, salt=str(n), first_bias=1.0)
        assert chosen == 1
        if unbiased != 1:
            flipped += 1
            assert _total(scores[1]) > max(_total(scores[c]) for c in (2, 3))
    assert flipped > 20


def test_partial_first_position_bias_flips_about_that_share_of_calls():
    sets = _sets(200)
    firsts = [judge(texts, salt="b", first_bias=0.5)[0] == 1 for texts in sets]
    unbiased = [judge(texts, salt="b")[0] == 1 for texts in sets]
    # Calls not already won by position 1 are won with probability ~0.5.
    gained = sum(f and not u for f, u in zip(firsts, unbiased, strict=True))
    assert 0.3 < gained / (len(sets) - sum(unbiased)) < 0.7


def test_length_bias_rewards_the_longer_candidate():
    for i in range(0, 20, 2):
        short, other = honest(i), honest(i + 1)
        longer = "\n".join(line + line[:3] if line else line for line in other.splitlines())
        _, plain = judge([short, longer], salt=str(i))
        _, biased = judge([short, longer], salt=str(i), length_bias=3.0)
        assert _total(biased[2]) > _total(plain[2])
        assert _total(biased[1]) < _total(plain[1])


def test_self_preference_rewards_the_judges_own_model():
    mine = [honest(i, model="deepseek-chat") for i in range(20)]
    theirs = [honest(i, model="qwen-max") for i in range(20, 40)]
    assert all(quality.in_style(t, "deepseek-chat") for t in mine)
    assert not any(quality.in_style(t, "deepseek-chat") for t in theirs)
    assert not any(quality.in_style(t, "deepseek-reasoner") for t in mine)
    for a, b in zip(mine, theirs, strict=True):
        _, plain = judge([a, b], model="deepseek-chat")
        _, biased = judge([a, b], model="deepseek-chat", self_preference=1.0)
        _, other_judge = judge([a, b], model="deepseek-reasoner", self_preference=1.0)
        assert _total(biased[1]) > _total(plain[1])
        assert biased[2] == plain[2]
        assert other_judge[1] == judge([a, b], model="deepseek-reasoner")[1][1]


def test_revisions_have_their_own_hidden_quality():
    text = initial_prompt("h").replace("<initial_translation>", "<revised_translation>")
    qualities = set()
    for i in range(30):
        got = answers.respond(text + str(i), temperature=0.2, seed=0, model="deepseek-chat")
        revised = extract_tag(got.content, "revised_translation") or ""
        assert quality.in_style(revised, "deepseek-chat")
        qualities.add(quality.hidden_quality(revised))
    assert len(qualities) == 30 and min(qualities) < 0.55 < max(qualities)


# --- the revision check ---------------------------------------------------------------


def check_prompt(first: str, second: str, *, salt: str = "") -> str:
    """The real revision-check template when the config has it, else its shape."""
    prompts = load_config().prompts
    if "revision_check" not in prompts:
        blocks = "\n".join(
            f'<version id="{i}">\n<translation>\n{t}\n</translation>\n</version>'
            for i, t in ((1, first), (2, second))
        )
        return (
            f"into Simplified Chinese\n<original_poem>\n{POEM}\n</original_poem>\n{blocks}\n"
            f"{salt}<revision_check>\n<preferred_version>1 or 2</preferred_version>"
        )
    variables = {
        "original_poem": POEM,
        "source_lang": "English",
        "target_lang": "Simplified Chinese",
        "poem_title": f"Fog {salt}",
        "poet_name": "Carl Sandburg",
        **dial_variables(StrategyDials()),
        "versions": [{"id": 1, "translation": first}, {"id": 2, "translation": second}],
    }
    rendered = render(prompts["revision_check"].for_model(reasoning=True), variables)
    return "\n".join(m["content"] for m in rendered.messages())


def check(first: str, second: str, *, salt: str = "", **knobs: Any) -> tuple[int, str]:
    got = answers.respond(
        check_prompt(first, second, salt=salt),
        temperature=0.2,
        seed=0,
        model="deepseek-reasoner",
        knobs=quality.Knobs(**knobs),
        step="revision_check",
    )
    body = extract_tag(got.content, "revision_check") or ""
    preferred = extract_tag(body, "preferred_version") or ""
    return int(preferred), extract_tag(body, "reason") or ""


def test_revision_check_answers_parse_and_prefer_the_better_version():
    pairs = [s[:2] for s in _sets(60, size=2)]
    right = 0
    for n, (a, b) in enumerate(pairs):
        preferred, reason = check(a, b, salt=str(n))
        assert preferred in (1, 2) and reason
        better = 1 if quality.hidden_quality(a) > quality.hidden_quality(b) else 2
        right += preferred == better
        assert check(a, b, salt=str(n), first_bias=1.0)[0] == 1
    assert right / len(pairs) >= 0.9
    assert answers._BUILDERS["revision_check"] is not None


# --- options ----------------------------------------------------------------------------


def test_quality_options_come_from_flags_and_environment_and_are_checked():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {
        f"{settings.SIM_ENV_PREFIX}DEFECT_RATE": "0.15",
        f"{settings.SIM_ENV_PREFIX}JUDGE_FIRST_BIAS": "0.3",
    }
    ns = parser.parse_args(["--judge-length-bias", "0.5", "--judge-self-preference", "1"])
    knobs = options_from(ns, env).knobs()
    assert knobs == quality.Knobs(
        defect_rate=0.15, noise=0.2, first_bias=0.3, length_bias=0.5, self_preference=1.0
    )
    for flag, value in (
        ("--defect-rate", "1.5"),
        ("--judge-first-bias", "2"),
        ("--judge-noise", "-1"),
    ):
        with pytest.raises(ValidationError):
            options_from(parser.parse_args([flag, value]), {})
    assert "planted defect" in parser.format_help()
