"""The simulator over real HTTP, driven by the real openai SDK (as the workers drive it)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from pydantic import ValidationError

from tests.helpers.poems import JING_YE_SI as POEM
from vpsweb.config import load_config
from vpsweb.domain.models import StrategyDials
from vpsweb.domain.parsing import extract_fields, label_lines
from vpsweb.domain.prompts import dial_variables, render
from vpsweb.local.processes import stop_process
from vpsweb.local.simulator_process import start_simulator_process
from vpsweb.simulator.options import SimulatorOptions, add_arguments, options_from
from vpsweb.simulator.server import HTML_PAGE, LATENCY_HEADER, Directives, Simulator
from vpsweb.stages.table import STAGE_NAMES

pytestmark = pytest.mark.integration

STEP_TAGS = {
    "initial_translation": ("initial_translation", "translated_poem_title"),
    "evaluation": ("selected_index", "scores"),
    "editor_review": ("editor_suggestions",),
    "translator_revision": ("revised_translation", "refined_translated_poem_title"),
    "revision_check": ("preferred_version", "reason"),
}


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    proc, url = start_simulator_process(extra_args=["--retry-after-ms", "1500", "--trickle-s", "3"])
    yield url
    stop_process(proc)


@pytest.fixture()
def client(sim: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim, api_key="sim", max_retries=0, timeout=10) as c:
        yield c


def stats(sim: str, *, reset: bool = False) -> dict[str, Any]:
    root = sim.removesuffix("/v1")
    if reset:
        req = urllib.request.Request(root + "/stats/reset", method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass
    with urllib.request.urlopen(root + "/stats", timeout=5) as resp:
        return json.load(resp)


def messages(step: str, **extra: Any) -> list[dict[str, str]]:
    """The real template of a step, rendered as a worker would render it."""
    variables: dict[str, Any] = {
        "original_poem": label_lines(POEM) if step == "editor_review" else POEM,
        "source_lang": "Chinese",
        "target_lang": "English",
        "poem_title": "静夜思",
        "poet_name": "李白",
        **dial_variables(StrategyDials()),
        "background_briefing_report": "",
        "strategy_hint": "literal",
        "variant_name": "literal",
        "candidates": [
            {"id": i, "title": "t", "translation": f"moonlight {i}", "notes": "n"}
            for i in (1, 2, 3)
        ],
        "criteria": [
            {"name": "fidelity", "description": "d"},
            {"name": "music", "description": "d"},
        ],
        "translated_title": "Quiet Night",
        "translation": "moonlight\nfrost\n\nlook up\nhome",
        "translation_notes": "n",
        "editor_suggestions": "1. [L1] softer",
        "runner_ups": [{"id": 2, "translation": "moonlight 2"}],
        "versions": [
            {"id": 1, "translation": "moonlight\nfrost"},
            {"id": 2, "translation": "moonlight\nrime"},
        ],
        **extra,
    }
    pair = load_config().prompts[step].for_model(reasoning=False)
    return render(pair, variables).messages()


@pytest.mark.parametrize("step", list(STAGE_NAMES))
def test_each_step_answers_with_its_tags(client, step):
    done = client.chat.completions.create(
        model="deepseek-chat", messages=messages(step), temperature=0.7
    )
    assert done.object == "chat.completion" and done.choices[0].finish_reason == "stop"
    fields = extract_fields(done.choices[0].message.content or "", STEP_TAGS[step])
    assert all(fields.values())
    usage = done.usage
    assert usage and usage.prompt_tokens > 100 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_answer_shape_latency_header_and_determinism(client):
    msgs = messages("initial_translation")
    raw = client.chat.completions.with_raw_response.create(
        model="sim-slow120", messages=msgs, temperature=0.3
    )
    body = raw.http_response.json()
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    assert body["model"] == "sim-slow120"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["vpsweb_latency_ms"] == 120.0 == float(raw.headers[LATENCY_HEADER])
    again = client.chat.completions.create(model="sim-slow120", messages=msgs, temperature=0.3)
    assert again.choices[0].message.content == body["choices"][0]["message"]["content"]


def test_reasoning_content_only_for_reasoner_models(client):
    msgs = messages("initial_translation")
    reasoner = client.chat.completions.create(model="deepseek-reasoner", messages=msgs)
    thought = getattr(reasoner.choices[0].message, "reasoning_content", None)
    content = reasoner.choices[0].message.content or ""
    assert thought and thought not in content and "<initial_translation>" in content
    chat = client.chat.completions.create(model="deepseek-chat", messages=msgs)
    assert getattr(chat.choices[0].message, "reasoning_content", None) is None


def test_models_are_listed(client):
    assert "deepseek-reasoner" in {m.id for m in client.models.list()}


def test_fail401_is_an_authentication_error(client):
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model="sim-fail401", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert "Incorrect API key provided" in info.value.message


def test_fail400_and_streaming_are_bad_requests(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="sim-fail400", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError, match="streaming is not supported"):
        client.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "x"}], stream=True
        )


def test_429x1_answers_retry_after_then_succeeds(client):
    msgs = [{"role": "user", "content": f"<initial_translation> {time.time_ns()}"}]
    create = client.chat.completions.with_raw_response.create
    with pytest.raises(openai.RateLimitError) as info:
        create(model="sim-429x1", messages=msgs)
    headers = info.value.response.headers
    assert headers["Retry-After"] == "2"  # 1500 ms rounded up to whole seconds
    assert headers["retry-after-ms"] == "1500"
    second = create(model="sim-429x1", messages=msgs)
    assert second.http_response.status_code == 200
    assert "<initial_translation>" in (second.parse().choices[0].message.content or "")


def test_malformed_is_billed_but_has_no_tags(client):
    done = client.chat.completions.create(
        model="sim-malformed", messages=messages("initial_translation")
    )
    content = done.choices[0].message.content or ""
    assert "<" not in content and done.usage and done.usage.completion_tokens > 0


def test_hang_times_out_and_frees_its_handler(sim):
    hanging = openai.OpenAI(base_url=sim, api_key="sim", max_retries=0, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        hanging.chat.completions.create(
            model="sim-hang", messages=[{"role": "user", "content": "x"}]
        )
    assert time.monotonic() - t0 < 3.0
    hanging.close()
    # The server notices the client left and stops holding the request.
    deadline = time.monotonic() + 3
    while stats(sim)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(sim)["in_flight"] == 0


def test_stats_count_requests_steps_and_statuses(client, sim):
    stats(sim, reset=True)
    for step in ("initial_translation", "initial_translation", "evaluation"):
        client.chat.completions.create(model="deepseek-chat", messages=messages(step))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="sim-fail500", messages=[{"role": "user", "content": "?"}]
        )
    got = stats(sim)
    assert got["total_requests"] == 4 and got["in_flight"] == 0
    assert got["by_step"] == {"initial_translation": 2, "evaluation": 1, "unknown": 1}
    assert got["by_status"] == {"200": 3, "500": 1}
    assert stats(sim, reset=True)["total_requests"] == 0


@pytest.mark.slow
def test_500_concurrent_requests_through_the_sdk(sim):
    """Capability: 500 requests at 1 s latency overlap instead of queueing.

    The SDK's default httpx2 transport costs the client ~4 ms CPU per request, which
    on a 2-core machine measures the client, not the server; the SDK's aiohttp
    transport (same SDK, same parsing) keeps the client out of the way.
    """
    n, latency_s = 500, 1.0

    async def burst() -> tuple[float, list[float]]:
        limits = httpx2.Limits(max_connections=600, max_keepalive_connections=600)
        http = openai.DefaultAioHttpClient(limits=limits, timeout=30)
        async with openai.AsyncOpenAI(
            base_url=sim, api_key="sim", max_retries=0, http_client=http
        ) as client:
            # One request first: the SDK builds its models lazily on the first call.
            await client.chat.completions.create(
                model="sim", messages=[{"role": "user", "content": "warm"}]
            )

            async def one(i: int) -> float:
                done = await client.chat.completions.create(
                    model="sim-slow1000", messages=[{"role": "user", "content": f"{i}"}]
                )
                return float((done.model_extra or {})["vpsweb_latency_ms"])

            t0 = time.perf_counter()
            applied = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 30)
            return time.perf_counter() - t0, applied

    wall, applied = asyncio.run(burst())
    print(f"\n{n} concurrent SDK requests at {latency_s:g} s latency: {wall:.2f} s wall")
    assert applied == [1000.0] * n
    # Overlap, measured by the server: all n were in flight at once (wall time is a
    # bench figure: bench/sim_concurrency.py).
    assert stats(sim)["max_in_flight"] >= n


# --- trickle and html200 ----------------------------------------------------------------------


def post(model: str, content: str = "<initial_translation> x") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def test_trickle_sends_a_correct_answer_over_several_seconds(sim):
    arrivals: list[float] = []
    chunks: list[bytes] = []
    # A 1 s read timeout never fires: every piece comes sooner than that.
    with (
        httpx2.Client(timeout=1.0) as http,
        http.stream("POST", sim + "/chat/completions", json=post("sim-trickle")) as resp,
    ):
        headers_at = time.monotonic()
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")
        for chunk in resp.iter_raw():
            arrivals.append(time.monotonic())
            chunks.append(chunk)
    assert len(chunks) >= 4
    assert arrivals[-1] - headers_at >= 2.0  # --trickle-s 3, after the headers
    answer = json.loads(b"".join(chunks))
    assert "<initial_translation>" in answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] > 0


def test_an_abandoned_trickle_counts_as_cancelled(sim):
    before = stats(sim)
    with (
        httpx2.Client(timeout=5.0) as http,
        http.stream("POST", sim + "/chat/completions", json=post("sim-trickle")) as resp,
    ):
        next(resp.iter_raw())  # one piece, then hang up
    deadline = time.monotonic() + 3
    while stats(sim)["cancelled"] == before["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.05)
    after = stats(sim)
    assert after["cancelled"] == before["cancelled"] + 1 and after["in_flight"] == 0


def test_html200_is_an_html_page_with_status_200(sim):
    with httpx2.Client(timeout=5.0) as http:
        resp = http.post(sim + "/chat/completions", json=post("sim-html200"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.text == HTML_PAGE == "<html><body>Bad gateway</body></html>"


def chunked(http: httpx2.Client, url: str, body: dict[str, Any]) -> tuple[bytes, int]:
    """The body of a POST and the number of pieces it arrived in."""
    with http.stream("POST", url + "/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        chunks = list(resp.iter_raw())
    return b"".join(chunks), len(chunks)


def test_counted_trickle_hits_only_the_first_identical_request(sim):
    body = post("sim-tricklex1", f"<initial_translation> {time.time_ns()}")
    with httpx2.Client(timeout=10.0) as http:
        first, first_pieces = chunked(http, sim, body)
        second, second_pieces = chunked(http, sim, body)
    assert first_pieces >= 4 and second_pieces < first_pieces  # sent at once
    a, b = json.loads(first), json.loads(second)
    assert a["choices"] == b["choices"] and a["usage"] == b["usage"]  # same correct answer


def test_counted_html200_hits_only_the_first_identical_request(sim):
    body = post("sim-html200x1", f"<initial_translation> {time.time_ns()}")
    with httpx2.Client(timeout=5.0) as http:
        first = http.post(sim + "/chat/completions", json=body)
        second = http.post(sim + "/chat/completions", json=body)
    assert first.status_code == second.status_code == 200
    assert first.text == HTML_PAGE
    assert "<initial_translation>" in second.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("model", "always", "counted", "slow"),
    [
        ("sim-trickle", "trickle", None, None),
        ("sim-html200", "html200", None, None),
        ("sim-tricklex2", None, ("trickle", 2), None),
        ("sim-html200x1-slow300", None, ("html200", 1), 300.0),
        ("sim-trickle-429x1", "trickle", ("rate429", 1), None),
    ],
)
def test_trickle_and_html200_directives(model, always, counted, slow):
    assert Directives.parse(model) == Directives(always, counted, slow)


@pytest.mark.parametrize(
    ("rate", "fault"), [("rate_trickle", "trickle"), ("rate_html200", "html200")]
)
def test_new_fault_rates_draw_their_fault(rate, fault):
    sim = Simulator(SimulatorOptions(**{rate: 1.0}))
    assert {sim._fault(Directives(), str(i)) for i in range(20)} == {fault}
    assert Simulator(SimulatorOptions())._fault(Directives(), "k") is None


def test_new_fault_rates_come_from_flags_and_env_and_share_one_draw():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {"VPSWEB_SIM_RATE_TRICKLE": "0.25", "VPSWEB_SIM_RATE_HTML200": "0.5"}
    opts = options_from(parser.parse_args([]), env)
    assert (opts.rate_trickle, opts.rate_html200) == (0.25, 0.5)
    assert options_from(parser.parse_args(["--rate-trickle", "0.1"]), env).rate_trickle == 0.1
    with pytest.raises(ValidationError, match=r"fractions add up to 1\.1, more than 1"):
        options_from(parser.parse_args(["--rate-trickle", "0.6", "--rate-html200", "0.5"]), {})
    with pytest.raises(ValidationError, match=r"add up to 1\.25"):
        options_from(parser.parse_args(["--rate-429", "0.5", "--rate-trickle", "0.75"]), {})
    helps = parser.format_help()
    assert "--trickle-s" in helps and "VPSWEB_SIM_RATE_HTML200" in helps


def test_rate_html200_from_the_environment_reaches_http():
    proc, url = start_simulator_process(env={"VPSWEB_SIM_RATE_HTML200": "1"})
    try:
        with httpx2.Client(timeout=5.0) as http:
            resp = http.post(url + "/chat/completions", json=post("deepseek-chat"))
    finally:
        stop_process(proc)
    assert resp.status_code == 200 and resp.text == HTML_PAGE
