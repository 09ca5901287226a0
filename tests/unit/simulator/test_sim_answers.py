"""The simulator's answers against the real prompt templates (the contract between them)."""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest

from tests.helpers.poems import JING_YE_SI as ZH_POEM
from tests.helpers.poems import POEM
from vpsweb.config import load_config
from vpsweb.domain.models import StrategyDials
from vpsweb.domain.parsing import extract_fields, label_lines, parse_scores, parse_selected_index
from vpsweb.domain.prompts import dial_variables, render
from vpsweb.simulator import answers as sim_answers
from vpsweb.simulator import thinking
from vpsweb.simulator.server import Directives, add_arguments, run_from_args
from vpsweb.stages.table import STAGE_NAMES

TAGS = {
    "initial_translation": (
        "translated_poem_title",
        "translated_poet_name",
        "initial_translation",
        "initial_translation_notes",
    ),
    "translator_revision": (
        "refined_translated_poem_title",
        "refined_translated_poet_name",
        "revised_translation",
        "revised_translation_notes",
    ),
    "editor_review": ("editor_suggestions",),
    "evaluation": ("selected_index", "scores", "rationale"),
    "revision_check": ("preferred_version", "reason"),
}


def _variables(poem: str, target: str, **extra: Any) -> dict[str, Any]:
    return {
        "original_poem": poem,
        "source_lang": "English" if target == "Chinese" else "Chinese",
        "target_lang": target,
        "poem_title": "Fog",
        "poet_name": "Carl Sandburg",
        **dial_variables(StrategyDials()),
        "background_briefing_report": "",
        "strategy_hint": "stay close to the literal sense",
        "variant_name": "literal",
        "translated_title": "雾",
        "translation": "雾来了\n踮着猫的细步。",
        "translation_notes": "notes",
        "editor_suggestions": "1. [L2] use a softer verb",
        "candidates": [],
        "criteria": [],
        "runner_ups": [],
        "versions": [
            {"id": 1, "translation": "雾来了\n踮着猫的细步。"},
            {"id": 2, "translation": "雾来了\n踩着猫的细步。"},
        ],
        **extra,
    }


def prompt(step: str, *, poem: str = POEM, target: str = "Chinese", **extra: Any) -> str:
    """System + user text of the real template, as the simulator receives it."""
    pair = load_config().prompts[step].for_model(reasoning=bool(extra.pop("reasoning", False)))
    if step == "editor_review":
        poem = label_lines(poem)
    rendered = render(pair, _variables(poem, target, **extra))
    return "\n".join(m["content"] for m in rendered.messages())


def _shape(poem: str) -> list[bool]:
    return [bool(line.strip()) for line in poem.strip("\n").splitlines()]


def _criteria(*names: str) -> list[dict[str, str]]:
    return [{"name": n, "description": f"how good the {n} is"} for n in names]


def _candidates(*texts: str) -> list[dict[str, Any]]:
    return [{"id": i, "title": "t", "translation": t, "notes": "n"} for i, t in enumerate(texts, 1)]


# --- step recognition ---------------------------------------------------------------


@pytest.mark.parametrize("step", list(STAGE_NAMES))
def test_each_real_template_is_recognised_as_its_step(step):
    extra = {"candidates": _candidates("a", "b"), "criteria": _criteria("fidelity")}
    assert sim_answers.recognise_step(prompt(step, **extra)) == step


def test_reasoning_template_is_recognised_too():
    text = prompt("initial_translation", reasoning=True)
    assert sim_answers.recognise_step(text) == "initial_translation"


def test_revision_prompt_quotes_earlier_tags_but_is_a_revision():
    text = prompt("translator_revision")
    assert "editor_suggestions" in text  # it quotes the editor, yet the order decides
    assert sim_answers.recognise_step(text) == "translator_revision"


def test_unrecognised_prompt_gets_plain_text():
    assert sim_answers.answer("hello there", temperature=0.3, seed=0) == (
        None,
        "I am a simulator and did not recognise the step.",
    )


# --- every answer parses with the production parser ------------------------------------


@pytest.mark.parametrize("step", list(STAGE_NAMES))
def test_answers_carry_the_step_tags_whatever_the_wrapping(step):
    extra = {"candidates": _candidates("a", "b", "c"), "criteria": _criteria("fidelity", "tone")}
    text = prompt(step, **extra)
    wrappers = set()
    for seed in range(12):  # enough seeds to meet every wrapping style
        got_step, content = sim_answers.answer(text, temperature=0.5, seed=seed)
        assert got_step == step
        fields = extract_fields(content, TAGS[step], what=step)
        assert all(fields.values())
        wrappers.add(content.lstrip()[:3])
    assert len(wrappers) > 1  # some answers come with prose or a fence around the tags


# --- determinism and variety -------------------------------------------------------------


def _translation(text: str, **kw: Any) -> str:
    _, content = sim_answers.answer(text, **{"temperature": 0.7, "seed": 0, **kw})
    return extract_fields(content, ["initial_translation"])["initial_translation"]


def test_same_prompt_same_answer_and_any_change_gives_another():
    text = prompt("initial_translation")
    assert sim_answers.answer(text, temperature=0.7, seed=0) == sim_answers.answer(
        text, temperature=0.7, seed=0
    )
    other_hint = prompt("initial_translation", strategy_hint="favour rhythm and sound")
    base = _translation(text)
    assert _translation(other_hint) != base
    assert _translation(text, temperature=0.9) != base
    assert _translation(text, seed=1) != base


# --- structure of translations ------------------------------------------------------------


@pytest.mark.parametrize(
    ("poem", "target", "script"),
    [(POEM, "Chinese", r"[\u4e00-\u9fff]"), (ZH_POEM, "English", r"^[A-Za-z ]+$")],
)
@pytest.mark.parametrize(
    ("step", "tag"),
    [
        ("initial_translation", "initial_translation"),
        ("translator_revision", "revised_translation"),
    ],
)
def test_translations_keep_lines_stanzas_and_target_script(poem, target, script, step, tag):
    for hint in ("a", "b", "c"):
        text = prompt(step, poem=poem, target=target, strategy_hint=hint)
        _, content = sim_answers.answer(text, temperature=0.7, seed=0)
        translation = extract_fields(content, [tag])[tag]
        assert _shape(translation) == _shape(poem)
        for line in filter(None, translation.splitlines()):
            assert re.search(script, line), line


def test_labelled_poem_lines_lose_their_labels():
    assert sim_answers.source_lines("<original_poem>\n[L1] a\n\n[L2] b\n</original_poem>") == [
        "a",
        "",
        "b",
    ]


# --- evaluation -----------------------------------------------------------------------------


def _judge(text: str, seed: int = 0) -> tuple[int, dict[int, dict[str, float]]]:
    _, content = sim_answers.answer(text, temperature=0.2, seed=seed)
    return parse_selected_index(content), parse_scores(content)


def test_judge_scores_every_presented_candidate_on_the_prompt_criteria():
    names = ("fidelity", "imagery", "tone", "form_and_rhythm")
    cands = _candidates("mist on cat feet", "fog creeps in", "the grey cat", "harbor sits")
    text = prompt("evaluation", candidates=cands, criteria=_criteria(*names))
    chosen, scores = _judge(text)
    assert set(scores) == {1, 2, 3, 4}
    for per in scores.values():
        assert set(per) == set(names)
        assert all(round(v, 1) == v and 1 <= v <= 10 for v in per.values())
    totals = {cid: sum(per.values()) for cid, per in scores.items()}
    best = max(totals.values())
    assert chosen == min(cid for cid, t in totals.items() if t == best)  # ties: lowest id


def test_judge_defaults_criteria_and_follows_the_text_not_the_position():
    texts = [f"variant number {i}" for i in range(5)]

    def shown(order: list[str]) -> tuple[str, dict[str, float]]:
        blocks = "\n".join(f'<candidate id="{i}">{t}</candidate>' for i, t in enumerate(order, 1))
        chosen, scores = _judge(blocks + "\n<selected_index>", seed=len(order[0]))
        assert set(next(iter(scores.values()))) == set(sim_answers.DEFAULT_CRITERIA)
        return order[chosen - 1], {order[c - 1]: sum(s.values()) for c, s in scores.items()}

    winner, totals = shown(texts)
    winner_rev, totals_rev = shown(texts[::-1])
    # A text scores about the same under any id (each call has its own small noise),
    # and the best text wins in both orders.
    assert all(abs(totals[t] - totals_rev[t]) <= 2 for t in texts)
    assert totals[winner] == max(totals.values())
    assert totals_rev[winner_rev] == max(totals_rev.values())


def test_judge_always_answers_a_presented_id():
    for n in range(1, 7):
        cands = _candidates(*(f"text {n} {i}" for i in range(n)))
        text = prompt("evaluation", candidates=cands, criteria=_criteria("fidelity"))
        for seed in range(5):
            chosen, scores = _judge(text, seed)
            assert 1 <= chosen <= n and set(scores) == set(range(1, n + 1))


# --- editor ---------------------------------------------------------------------------------


@pytest.mark.parametrize("poem", [POEM, "one single line"])
def test_editor_gives_two_to_four_numbered_suggestions_on_real_labels(poem):
    labels = {f"L{i}" for i in range(1, len([x for x in poem.splitlines() if x.strip()]) + 1)}
    for hint in range(6):
        text = prompt("editor_review", poem=poem, translation_notes=str(hint))
        _, content = sim_answers.answer(text, temperature=0.3, seed=0)
        body = extract_fields(content, ["editor_suggestions"])["editor_suggestions"]
        items = body.splitlines()
        assert 2 <= len(items) <= 4
        for number, item in enumerate(items, 1):
            m = re.match(rf"{number}\. \[(L\d+)\] ", item)
            assert m and m.group(1) in labels, item


# --- usage and reasoning --------------------------------------------------------------------


def test_token_counts_follow_text_length():
    assert sim_answers.count_tokens("") == 1
    assert sim_answers.count_tokens("abcd") == 1
    assert sim_answers.count_tokens("abcde") == 2
    assert sim_answers.count_tokens("a" * 400) == 100
    assert sim_answers.count_tokens("床前明月光，") == 6  # CJK punctuation is a token too
    assert sim_answers.count_tokens("床前 moon") == 2 + 2


def test_reasoning_is_short_deterministic_and_has_no_answer_tags():
    text = prompt("initial_translation")
    thought = thinking.reasoning_for(text, 0)
    assert thought == thinking.reasoning_for(text, 0)
    assert 20 < len(thought) < 600 and "<" not in thought


# --- model-name directives and option errors (pure parts of the server) --------------------


@pytest.mark.parametrize(
    ("model", "always", "counted", "slow"),
    [
        ("deepseek-chat", None, None, None),
        ("sim-FAIL401", "fail401", None, None),
        ("sim-hang", "hang", None, None),
        ("sim-malformed", "malformed", None, None),
        ("sim-malformedx2", None, ("malformed", 2), None),
        ("sim-429x3-slow250", None, ("rate429", 3), 250.0),
        ("sim-500x1", None, ("fail500", 1), None),
        ("sim-fail401-429x1", "fail401", ("rate429", 1), None),
    ],
)
def test_model_name_directives(model, always, counted, slow):
    assert Directives.parse(model) == Directives(always, counted, slow)


def test_bad_options_name_the_flag_and_variable(capsys, monkeypatch):
    monkeypatch.setenv("VPSWEB_SIM_RATE_HANG", "2")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run_from_args(parser.parse_args(["--port", "80000"])) == 2
    err = capsys.readouterr().err
    assert "--port (or VPSWEB_SIM_PORT)" in err
    assert "--rate-hang (or VPSWEB_SIM_RATE_HANG): Input should be less than or equal to 1" in err


def test_fault_rates_must_share_one_draw(capsys, monkeypatch):
    for name in ("RATE_429", "RATE_500", "RATE_HANG", "RATE_MALFORMED"):
        monkeypatch.delenv(f"VPSWEB_SIM_{name}", raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run_from_args(parser.parse_args(["--rate-429", "0.8", "--rate-500", "0.5"])) == 2
    assert "fractions add up to 1.3, more than 1" in capsys.readouterr().err
