"""Flower credential rules and simulator options, without starting either."""

from __future__ import annotations

import argparse
import re
import statistics

import pytest
from pydantic import ValidationError

from vpsweb.cli import main
from vpsweb.monitoring.flower import FlowerConfigError, flower_broker_uri, flower_environment
from vpsweb.simulator import answers as sim_answers
from vpsweb.simulator.protocol import ChatRequest, Directives
from vpsweb.simulator.server import Simulator, add_arguments, options_from


def test_flower_needs_credentials():
    with pytest.raises(FlowerConfigError, match="VPSWEB_FLOWER_USER"):
        flower_environment({}, address="0.0.0.0", allow_no_auth_on_localhost=False)
    with pytest.raises(FlowerConfigError):  # --dev-no-auth is for localhost only
        flower_environment({}, address="0.0.0.0", allow_no_auth_on_localhost=True)


GOOD_PASSWORD = "q7/Zr+k9#Lm2@x%w"  # 16 characters, no comma: accepted


def test_flower_credentials_go_through_the_environment():
    env = flower_environment(
        {"VPSWEB_FLOWER_USER": "ops", "VPSWEB_FLOWER_PASSWORD": GOOD_PASSWORD},
        address="0.0.0.0",
        allow_no_auth_on_localhost=False,
    )
    assert env["FLOWER_BASIC_AUTH"] == f"ops:{GOOD_PASSWORD}"
    dev = flower_environment({}, address="127.0.0.1", allow_no_auth_on_localhost=True)
    assert "FLOWER_BASIC_AUTH" not in dev


@pytest.mark.parametrize(
    ("user", "password", "message"),
    [
        ("ops", "long-enough,ss", "must not contain ','"),
        ("ops", ",leading-comma-pw", "splits its credentials on commas"),
        ("o:ps", GOOD_PASSWORD, "VPSWEB_FLOWER_USER must not contain ':' or ','"),
        ("o,ps", GOOD_PASSWORD, "VPSWEB_FLOWER_USER must not contain ':' or ','"),
        ("ops", "elevenchars", "shorter than 12 characters"),
        ("ops", "pw", "shorter than 12 characters"),
        ("ops", "change-me", "still the .env.example placeholder 'change-me'"),
        ("ops", "change-me-too", "still the .env.example placeholder 'change-me-too'"),
    ],
)
def test_flower_rejects_unsafe_credentials(user, password, message):
    env = {"VPSWEB_FLOWER_USER": user, "VPSWEB_FLOWER_PASSWORD": password}
    for address in ("0.0.0.0", "127.0.0.1"):  # localhost is no excuse once they are set
        with pytest.raises(FlowerConfigError, match=re.escape(message)):
            flower_environment(env, address=address, allow_no_auth_on_localhost=True)


def test_flower_accepts_twelve_characters_and_any_other_punctuation():
    for password in ("x" * 12, "a:b:c:d:e:f:g", "sp ace/#@%+=?pw"):
        env = flower_environment(
            {"VPSWEB_FLOWER_USER": "ops", "VPSWEB_FLOWER_PASSWORD": password},
            address="0.0.0.0",
            allow_no_auth_on_localhost=False,
        )
        assert env["FLOWER_BASIC_AUTH"] == f"ops:{password}"


def test_vpsweb_flower_prints_why_it_refuses_a_password(monkeypatch, capsys):
    monkeypatch.setenv("VPSWEB_FLOWER_USER", "ops")
    monkeypatch.setenv("VPSWEB_FLOWER_PASSWORD", "change-me-too")
    assert main(["flower", "--port", "5999"]) == 2
    assert "placeholder" in capsys.readouterr().err


def test_vpsweb_flower_refuses_to_start_without_credentials(monkeypatch, capsys):
    monkeypatch.delenv("VPSWEB_FLOWER_USER", raising=False)
    monkeypatch.delenv("VPSWEB_FLOWER_PASSWORD", raising=False)
    assert main(["flower", "--port", "5999"]) == 2
    assert "needs credentials" in capsys.readouterr().err


def _ns(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_simulator_options_from_env_and_flags():
    env = {"VPSWEB_SIM_LATENCY_MS": "250", "VPSWEB_SIM_RATE_429": "0.1", "VPSWEB_SIM_SEED": "7"}
    opts = options_from(_ns("--rate-429", "0.2"), env)
    assert opts.latency_ms == 250 and opts.seed == 7
    assert opts.rate_429 == 0.2  # the flag wins over the environment


REQ = ChatRequest("deepseek-chat", ["<original_poem>\na b\n</original_poem>"], 0.7, "key")


def test_simulator_lognormal_latency_has_its_median_and_a_long_tail():
    """--latency-dist lognormal: --latency-ms is the median, --latency-sigma the tail;
    a slowNNN directive is the median of its own request."""
    env = {"VPSWEB_SIM_LATENCY_DIST": "lognormal", "VPSWEB_SIM_LATENCY_SIGMA": "0.8"}
    opts = options_from(_ns("--latency-ms", "1000"), env)
    assert opts.latency_dist == "lognormal" and opts.latency_sigma == 0.8
    sim = Simulator(opts)
    draws = sorted(
        sim._latency_s(Directives.parse("deepseek-chat"), REQ, None) for _ in range(4000)
    )
    assert 0.93 < statistics.median(draws) < 1.07
    p90 = draws[int(0.9 * len(draws))]
    assert 2.4 < p90 < 3.2  # exp(0.8 x 1.2816) = 2.79 times the median
    slow = [sim._latency_s(Directives.parse("sim-slow100"), REQ, None) for _ in range(2000)]
    assert 0.09 < statistics.median(slow) < 0.11


def test_simulator_uniform_latency_stays_within_its_jitter():
    sim = Simulator(options_from(_ns("--latency-ms", "100", "--jitter-ms", "10"), {}))
    draws = [sim._latency_s(Directives.parse("deepseek-chat"), REQ, None) for _ in range(500)]
    assert all(0.09 <= d <= 0.11 for d in draws)


def test_paired_latencies_repeat_per_poem_and_step_after_a_reset():
    """--latency-paired: the k-th request of a (poem, step, model, temperature) draws
    the same latency in every run; another poem draws another."""
    env = {"VPSWEB_SIM_LATENCY_DIST": "lognormal", "VPSWEB_SIM_LATENCY_SIGMA": "0.8"}
    sim = Simulator(options_from(_ns("--latency-ms", "1000", "--latency-paired", "1"), env))
    other = ChatRequest("deepseek-chat", ["<original_poem>\nx y\n</original_poem>"], 0.7, "k")

    def run() -> list[float]:
        sim.reset()
        d = Directives.parse("deepseek-chat")
        return [sim._latency_s(d, r, "initial_translation") for r in (REQ, REQ, other)]

    first, second = run(), run()
    assert first == second and len(set(first)) == 3


def test_simulator_latency_dist_is_checked():
    with pytest.raises(ValidationError, match="uniform"):
        options_from(_ns("--latency-dist", "pareto"), {})


def test_simulator_rates_must_be_fractions():
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        options_from(_ns("--rate-500", "1.5"), {})


POEM_PROMPT = "Target language: English\n<original_poem>\na b\n\nc d\ne f\n</original_poem>\n"


@pytest.mark.parametrize(
    ("tag", "step"),
    [
        ("revised_translation", "translator_revision"),
        ("selected_index", "evaluation"),
        ("editor_suggestions", "editor_review"),
        ("initial_translation", "initial_translation"),
    ],
)
def test_simulator_recognises_steps(tag, step):
    assert sim_answers.recognise_step(POEM_PROMPT + f"<{tag}>") == step


def test_simulator_answers_are_deterministic_and_keep_the_poem_shape():
    prompt = POEM_PROMPT + "hint A <initial_translation>"
    a = sim_answers.answer(prompt, temperature=0.7, seed=0)
    assert a == sim_answers.answer(prompt, temperature=0.7, seed=0)
    b = sim_answers.answer(POEM_PROMPT + "hint B <initial_translation>", temperature=0.7, seed=0)
    assert a[1] != b[1]
    body = a[1].split("<initial_translation>")[1].split("</initial_translation>")[0].strip("\n")
    assert [bool(line.strip()) for line in body.splitlines()] == [True, False, True, True]


def test_simulator_judge_picks_a_shown_candidate_with_the_prompt_criteria():
    prompt = (
        "<criteria>\n- fidelity: x\n- music: y\n</criteria>\n"
        '<candidate id="1">one</candidate>\n<candidate id="2">two</candidate>\n<selected_index>'
    )
    _, content = sim_answers.answer(prompt, temperature=0.1, seed=3)
    chosen = int(content.split("<selected_index>")[1].split("</selected_index>")[0])
    assert chosen in (1, 2)
    assert 'score id="2">fidelity=' in content and "music=" in content


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("vpsweb.workers.broker:RedisTransport://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
        (
            "vpsweb.workers.broker:SentinelTransport://:pw@127.0.0.1:26379/0",
            "sentinel://:pw@127.0.0.1:26379/0",
        ),
        ("amqp://guest:guest@127.0.0.1:5672/v", "amqp://guest:guest@127.0.0.1:5672/v"),
    ],
)
def test_flower_broker_page_gets_a_scheme_it_knows(given: str, shown: str) -> None:
    """Flower picks its queue-length client by the broker URL's scheme; kombu names
    vpsweb's transports "module:Class://", which Flower refused (404)."""
    assert flower_broker_uri(given) == shown
