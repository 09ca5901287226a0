"""The one LLM path (openai SDK) against the real simulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest

from tests.stage_calls import editor_review, evaluate, translate_candidate, translator_revision
from vpsweb.config import load_config
from vpsweb.errors import LLMTimeout, MissingAPIKey, PermanentLLMError, TransientLLMError
from vpsweb.llm.client import OpenAICompatibleClient
from vpsweb.local.processes import stop_process
from vpsweb.local.simulator_process import start_simulator_process
from vpsweb.models import ModelInfo
from vpsweb.plan import build_plan
from vpsweb.stages import StageContext

pytestmark = pytest.mark.integration

POEM = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。"


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    proc, url = start_simulator_process(extra_args=["--retry-after-ms", "300"])
    yield url
    stop_process(proc)


def requests_seen(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as resp:
        return int(json.load(resp)["total_requests"])


def plan_for(sim: str, n: int = 3):
    plan = build_plan(
        {
            "poem": POEM,
            "source_lang": "zh-CN",
            "target_lang": "en",
            "title": "静夜思",
            "author": "李白",
            "parallel_count": n,
        },
        load_config(),
        job_id="llm-test",
        offline=True,
    )
    return plan


def call_with(plan, model: str, **changes):
    call = plan.candidates[0].call
    info = ModelInfo(model=model, provider="simulator", api_model=model)
    return call.model_copy(update={"model": info, **changes})


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def llm_for(sim: str, sleeps: Sleeps | None = None) -> OpenAICompatibleClient:
    return OpenAICompatibleClient(
        env={"VPSWEB_SIMULATOR_URL": sim}, sleep=sleeps if sleeps is not None else time.sleep
    )


def test_every_step_answer_parses(sim):
    plan = plan_for(sim)
    ctx = StageContext(plan=plan, prompts=load_config().prompts, llm=llm_for(sim))
    cands = [translate_candidate(ctx, i) for i in range(3)]
    assert all(c.ok for c in cands), [c.error for c in cands]
    assert len({c.translation for c in cands}) == 3  # variants differ
    for c in cands:
        assert len(c.translation.splitlines()) == len(POEM.splitlines())  # stanza kept
        assert c.metrics and c.metrics.usage.prompt_tokens > 0 and c.metrics.usage.cost > 0
    ev = evaluate(ctx, cands)
    assert ev.method == "judge" and ev.selected_index in range(3)
    assert {s.index for s in ev.scores} == {0, 1, 2}
    assert set(ev.scores[0].scores) == {c.name for c in plan.criteria}
    review = editor_review(ctx, cands[ev.selected_index])
    assert "[L" in review.suggestions
    rev = translator_revision(ctx, cands[ev.selected_index], review)
    assert rev.translation and rev.translated_title


def test_reasoning_content_kept_apart(sim):
    plan = plan_for(sim)
    llm = llm_for(sim)
    messages = [
        {"role": "user", "content": "<original_poem>\na\n</original_poem> <initial_translation>"}
    ]
    reasoner = llm.complete(call_with(plan, "deepseek-reasoner"), messages)
    assert reasoner.reasoning_content and reasoner.reasoning_content not in reasoner.content
    assert "<initial_translation>" in reasoner.content
    plain = llm.complete(call_with(plan, "deepseek-chat"), messages)
    assert plain.reasoning_content is None


def test_429_then_success_honours_retry_after(sim):
    plan = plan_for(sim)
    sleeps = Sleeps()
    before = requests_seen(sim)
    done = llm_for(sim, sleeps).complete(
        call_with(plan, "sim-429x2", retries=3),
        [{"role": "user", "content": f"<initial_translation> {time.time()}"}],
    )
    assert done.attempts == 3
    assert sleeps == [0.3, 0.3]  # the server's retry-after-ms, not our back-off
    assert requests_seen(sim) - before == 3


def test_401_is_not_retried(sim):
    plan = plan_for(sim)
    sleeps = Sleeps()
    before = requests_seen(sim)
    with pytest.raises(PermanentLLMError) as info:
        llm_for(sim, sleeps).complete(
            call_with(plan, "sim-fail401", retries=3), [{"role": "user", "content": "hello"}]
        )
    assert info.value.status == 401 and "check the API key" in str(info.value)
    assert sleeps == [] and requests_seen(sim) - before == 1


def test_500_is_retried_until_budget_then_fails(sim):
    plan = plan_for(sim)
    sleeps = Sleeps()
    llm = OpenAICompatibleClient(
        env={"VPSWEB_SIMULATOR_URL": sim}, sleep=sleeps, backoff_base_s=0.01
    )
    with pytest.raises(TransientLLMError) as info:
        llm.complete(call_with(plan, "sim-fail500", retries=2), [{"role": "user", "content": "x"}])
    assert "HTTP 500" in str(info.value) and info.value.attempts == 3
    assert len(sleeps) == 2


def test_hang_ends_at_timeout_with_clear_error(sim):
    plan = plan_for(sim)
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout) as info:
        llm_for(sim).complete(
            call_with(plan, "sim-hang", retries=0, timeout_s=1.0),
            [{"role": "user", "content": "x"}],
        )
    elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 3.0
    assert "no answer within 1s" in str(info.value)


def test_malformed_answers_are_retried_then_fail_clearly(sim):
    plan = plan_for(sim, n=1)
    bad = call_with(plan, "sim-malformed")
    plan.candidates[0].call = bad
    before = requests_seen(sim)
    ctx = StageContext(plan=plan, prompts=load_config().prompts, llm=llm_for(sim))
    result = translate_candidate(ctx, 0)
    assert not result.ok
    assert "missing required tag(s) <initial_translation>" in (result.error or "")
    assert result.metrics and result.metrics.billed_calls == plan.parse_retries + 1
    assert requests_seen(sim) - before == plan.parse_retries + 1
    assert result.metrics.usage.completion_tokens > 0  # billed, and counted


def test_missing_api_key_names_variable_provider_and_model(sim):
    plan = build_plan(
        {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en"},
        load_config(),
        job_id="k",
        offline=False,
    )
    with pytest.raises(MissingAPIKey) as info:
        OpenAICompatibleClient(env={}).complete(plan.candidates[0].call, [])
    text = str(info.value)
    assert "DEEPSEEK_API_KEY" in text and "'deepseek'" in text and "'deepseek-chat'" in text


@pytest.mark.slow
def test_simulator_holds_500_concurrent_requests(sim):
    """Capacity of the simulator itself, so a light client (aiohttp) drives it: the
    openai SDK spends ~4 ms of CPU per request, which on 2 cores would measure the
    client (bench/sim_concurrency.py reports both)."""

    async def burst() -> tuple[float, list[float]]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> float:
                body = {"model": "sim-slow1000", "messages": [{"role": "user", "content": str(i)}]}
                async with session.post(sim + "/chat/completions", json=body) as resp:
                    assert resp.status == 200
                    return float((await resp.json())["vpsweb_latency_ms"])

            t0 = time.perf_counter()
            applied = await asyncio.gather(*(one(i) for i in range(500)))
            return time.perf_counter() - t0, applied

    urllib.request.urlopen(
        urllib.request.Request(sim.removesuffix("/v1") + "/stats/reset", method="POST"), timeout=5
    ).close()
    wall, applied = asyncio.run(burst())
    print(f"500 concurrent requests at 1 s latency: {wall:.2f} s wall")
    assert len(applied) == 500 and set(applied) == {1000.0}
    # Overlap, measured by the server (the wall time is a bench figure).
    with urllib.request.urlopen(sim.removesuffix("/v1") + "/stats", timeout=5) as resp:
        assert json.load(resp)["max_in_flight"] >= 500


def test_provider_errors_never_carry_the_api_key(sim):
    plan = plan_for(sim)
    secret = "sk-test-SECRET-123456789"
    call = call_with(
        plan, "sim-fail401", base_url=sim, base_url_env=None, api_key_env="DEEPSEEK_API_KEY"
    )
    llm = OpenAICompatibleClient(env={"DEEPSEEK_API_KEY": secret})
    with pytest.raises(PermanentLLMError) as info:
        llm.complete(call, [{"role": "user", "content": "x"}])
    text = str(info.value)
    assert "Incorrect API key provided" in text and "[redacted key]" in text
    assert "6789" not in text and "sk-" not in text
