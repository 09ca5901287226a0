"""The offline LLM simulator: an asynchronous OpenAI-compatible HTTP server.

Demos, tests and benchmarks talk to it through the real `openai` SDK, so they
exercise the production path. Latency is an asyncio sleep, so one process holds
hundreds of requests at once. Faults come two ways: random rates (for load and
chaos runs) and directives in the model name (for deterministic tests):

* ``fail401`` / ``fail400`` / ``fail500``: always that status; ``fail404``: "model not
  found", as a provider answers a model name it does not serve; ``hang``: never answer
  in time; ``malformed``: always an answer without the step's tags; ``trickle``: a
  correct answer whose body dribbles in over ``--trickle-s`` (defeats per-read
  timeouts); ``html200``: status 200 with an HTML page, as a broken proxy sends;
  ``truncate``: the answer cut off halfway through its main field, with
  finish_reason "length", as a model reaching max_tokens leaves it;
* ``429xK`` / ``500xK`` / ``malformedxK`` / ``tricklexK`` / ``html200xK`` /
  ``truncatexK``: the first K identical requests get it;
* ``slowNNN``: NNN ms latency for this request.

Provider-style limits (``--rpm``, ``--tpm``, ``--max-concurrent``; see ``limits.py``)
refuse what a real provider's quota would, with its headers.

``GET /truth`` tells what the judge cannot know: every planted defect delivered
(``--defect-rate``), by the fingerprint of its text (``quality.fingerprint``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import signal
import sys
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from vpsweb import settings
from vpsweb.simulator import answers, limits, thinking
from vpsweb.simulator.options import SimulatorOptions, add_arguments, options_from
from vpsweb.simulator.protocol import BadChatRequest, ChatRequest, Directives, error_response

LATENCY_HEADER = "X-Vpsweb-Latency-Ms"
MODEL_IDS = ("vpsweb-sim", "deepseek-chat", "deepseek-reasoner")
TRICKLE_TICK_S = 0.5
HTML_PAGE = "<html><body>Bad gateway</body></html>"


class Simulator:
    """Request handling and counters; one instance per app, all on one event loop."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.random = random.Random(options.seed)
        self.knobs = options.knobs()
        self.seen: Counter[str] = Counter()
        self.stats: dict[str, Any] = {}
        self.defects: dict[str, str] = {}  # fingerprint -> kind, for /truth
        self.latency_slots: Counter[str] = Counter()  # --latency-paired ordinals
        quota = options.model_dump(include={"rpm", "tpm", "max_concurrent", "burst"})
        self.quota = limits.ProviderLimits(**quota)
        self.reset()

    def reset(self) -> None:
        # in_flight is live state, not a counter: requests still running keep it.
        in_flight = self.stats.get("in_flight", 0)
        self.defects = {}
        self.latency_slots = Counter()
        self.stats = {
            "total_requests": 0,
            "in_flight": in_flight,
            "max_in_flight": in_flight,
            "cancelled": 0,
            "by_step": Counter(),
            "by_status": Counter(),
            "by_model": Counter(),
            # Which key came with each request, as a fingerprint (never the key): lets
            # tests show where a worker's key went.
            "by_key": Counter(),
        }
        self.quota.reset_counts()

    def _latency_s(self, directives: Directives, req: ChatRequest, step: str | None) -> float:
        """One draw around the base (a ``slowNNN`` directive's, else --latency-ms):
        uniform jitter around it as the mean, or a lognormal with it as the median
        (a long right tail, as real providers have)."""
        o = self.options
        base = directives.slow_ms if directives.slow_ms is not None else o.latency_ms
        rng = self._latency_rng(req, step) if o.latency_paired else self.random
        if o.latency_dist == "lognormal":
            ms = base * math.exp(rng.gauss(0.0, o.latency_sigma))
        else:
            ms = base + (rng.uniform(-o.jitter_ms, o.jitter_ms) if o.jitter_ms else 0.0)
        return max(0.0, ms) / 1000

    def _latency_rng(self, req: ChatRequest, step: str | None) -> random.Random:
        """--latency-paired: the k-th request of a (poem, step, model, temperature) gets
        the same draw in every run, whatever the order requests arrive in; so N=1 and
        N=8 jobs of one poem see the same later stages and their makespans differ by
        the candidate stage alone (common random numbers)."""
        poem = answers.poem_block(req.prompt) or ""
        slot = f"{poem}\0{step}\0{req.model}\0{req.temperature:g}"
        self.latency_slots[slot] += 1
        key = f"{self.options.seed}\0{slot}\0{self.latency_slots[slot]}".encode()
        return random.Random(hashlib.sha256(key).digest())

    def _fault(self, directives: Directives, key: str) -> str | None:
        """Which fault this request gets, if any: directives first, then random rates."""
        if directives.always:
            return directives.always
        if directives.counted:
            fault, times = directives.counted
            self.seen[key] += 1
            return fault if self.seen[key] <= times else None
        o, r = self.options, self.random.random()
        for name, rate in (
            ("rate429", o.rate_429),
            ("fail500", o.rate_500),
            ("hang", o.rate_hang),
            ("malformed", o.rate_malformed),
            ("trickle", o.rate_trickle),
            ("html200", o.rate_html200),
        ):
            if r < rate:
                return name
            r -= rate
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats["total_requests"] += 1
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            response = await self._chat(request)
        # The client went away (timeout, cancel, Ctrl-C): the handler is cancelled, or
        # a trickled body finds the connection closed under it.
        except (asyncio.CancelledError, ConnectionResetError):
            self.stats["cancelled"] += 1
            raise
        finally:
            self.stats["in_flight"] -= 1
        self.stats["by_status"][str(response.status)] += 1
        return response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            req = ChatRequest.parse(body)
        except json.JSONDecodeError:
            return error_response(400, "body is not valid JSON", "invalid_request_error")
        except BadChatRequest as exc:
            return error_response(400, str(exc), "invalid_request_error")
        prompt = req.prompt
        step = answers.recognise_step(prompt)
        self.stats["by_step"][step or "unknown"] += 1
        self.stats["by_model"][req.model] += 1
        self.stats["by_key"][key_fingerprint(request.headers.get("Authorization", ""))] += 1
        prompt_tokens = answers.count_tokens("".join(req.texts))
        admitted = self.quota.admit(prompt_tokens, limits.max_tokens_of(body))
        if isinstance(admitted, limits.Refusal):
            return limits.refusal_response(admitted)
        try:  # released whatever happens, a client hanging up (cancellation) included
            return await self._answer(request, req, step, admitted)
        finally:
            self.quota.release(admitted)

    async def _answer(
        self, request: web.Request, req: ChatRequest, step: str | None, admitted: limits.Admission
    ) -> web.StreamResponse:
        directives = Directives.parse(req.model)
        fault = self._fault(directives, req.key)
        if fault == "fail401":
            return error_response(
                401,
                f"Incorrect API key provided: {_masked(request)}.",
                "invalid_request_error",
                "invalid_api_key",
            )
        if fault == "fail400":
            return error_response(400, "Invalid request (simulated)", "invalid_request_error")
        if fault == "fail404":
            return error_response(
                404,
                f"The model `{req.model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        latency = self._latency_s(directives, req, step)
        if fault == "hang":
            await asyncio.sleep(self.options.hang_s)
        await asyncio.sleep(latency)
        if fault == "rate429":
            return self._rate_limited()
        if fault == "fail500":
            return error_response(500, "The server had an error (simulated)", "server_error")
        if fault == "html200":
            return web.Response(text=HTML_PAGE, content_type="text/html")
        latency_ms = round(latency * 1000, 3)
        payload = self._payload(req, fault=fault, latency_ms=latency_ms)
        admitted.completion_used = payload["usage"]["completion_tokens"]
        headers = {LATENCY_HEADER: str(latency_ms), **admitted.headers}
        if fault == "trickle":
            return await self._trickle(request, payload, headers)
        return web.json_response(payload, headers=headers)

    def _payload(self, req: ChatRequest, *, fault: str | None, latency_ms: float) -> dict[str, Any]:
        prompt = req.prompt
        got = answers.respond(
            prompt,
            temperature=req.temperature,
            seed=self.options.seed,
            model=req.model,
            knobs=self.knobs,
        )
        step, content, finish = got.step, got.content, "stop"
        # Only a defect the client receives intact is part of the truth.
        if got.planted and fault not in ("malformed", "truncate"):
            self.defects[got.planted[0]] = got.planted[1]
        if fault == "malformed":
            content = answers.MALFORMED
        elif fault == "truncate":
            content, finish = answers.truncated(content, step), "length"
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if "reason" in req.model.lower():
            message["reasoning_content"] = thinking.reasoning_for(prompt, self.options.seed)
        prompt_tokens = answers.count_tokens("".join(req.texts))
        completion_tokens = answers.count_tokens(content)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "vpsweb_latency_ms": latency_ms,
        }

    async def _trickle(
        self, request: web.Request, payload: dict[str, Any], headers: dict[str, str]
    ) -> web.StreamResponse:
        """A correct answer, sent after the headers in pieces over ``trickle_s``."""
        body = json.dumps(payload).encode()
        response = web.StreamResponse(headers=headers)
        response.content_type = "application/json"
        response.content_length = len(body)
        await response.prepare(request)
        ticks = max(1, round(self.options.trickle_s / TRICKLE_TICK_S))
        size = math.ceil(len(body) / ticks)
        for start in range(0, len(body), size):
            await asyncio.sleep(TRICKLE_TICK_S)
            await response.write(body[start : start + size])
        await response.write_eof()
        return response

    def _rate_limited(self) -> web.Response:
        after_ms = self.options.retry_after_ms
        resp = error_response(
            429, "Rate limit reached (simulated)", "rate_limit_error", "rate_limit"
        )
        # Both forms: the openai SDK prefers retry-after-ms, other clients read seconds.
        resp.headers["Retry-After"] = str(math.ceil(after_ms / 1000))
        resp.headers["retry-after-ms"] = str(math.ceil(after_ms))
        return resp

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "vpsweb"} for i in MODEL_IDS]
        return web.json_response({"object": "list", "data": data})

    async def get_stats(self, request: web.Request) -> web.Response:
        stats = {k: dict(v) if isinstance(v, Counter) else v for k, v in self.stats.items()}
        # accepted, throttled, throttled_by, max_in_flight_seen: the provider-style limits
        return web.json_response({**stats, **self.quota.counts()})

    async def truth(self, request: web.Request) -> web.Response:
        return web.json_response({"defects": dict(self.defects)})

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def key_fingerprint(authorization: str) -> str:
    """The first 12 hex digits of the bearer key's SHA-256 (\"none\" without one)."""
    key = authorization.removeprefix("Bearer ").strip()
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else "none"


def _masked(request: web.Request) -> str:
    """Like real providers, echo a masked form of the key that was sent."""
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return f"{sent[:3]}****{sent[-4:]}" if len(sent) > 8 else "****"


SIMULATOR_KEY = web.AppKey("simulator", Simulator)


def build_app(options: SimulatorOptions) -> web.Application:
    sim = Simulator(options)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIMULATOR_KEY] = sim
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/stats", sim.get_stats)
    app.router.add_post("/stats/reset", sim.reset_stats)
    app.router.add_get("/truth", sim.truth)
    return app


async def serve(options: SimulatorOptions, *, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or until ``stop`` is set, for in-process use)."""
    # handler_cancellation: a client that gives up (timeout on a hang) frees its
    # handler at once; shutdown_timeout: a hanging request does not hold up exit.
    runner = web.AppRunner(
        build_app(options), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
    )
    await runner.setup()
    # A deep accept queue: 500 clients connecting at once must not be refused.
    site = web.TCPSite(runner, options.host, options.port, backlog=2048)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    port = runner.addresses[0][1] if runner.addresses else options.port
    host = f"[{options.host}]" if ":" in options.host else options.host
    print(f"vpsweb simulator listening on http://{host}:{port}/v1", flush=True)
    if stop is None:
        stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Only the main thread may install handlers; embedded callers use ``stop``.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def run_from_args(ns: argparse.Namespace) -> int:
    try:
        options = options_from(ns)
    except ValidationError as exc:
        for err in exc.errors():
            if err["loc"]:
                name = str(err["loc"][0])
                where = f"--{name.replace('_', '-')} (or {settings.SIM_ENV_PREFIX}{name.upper()}): "
            else:
                where = ""
            sys.stderr.write(f"vpsweb simulate-llm: {where}{err['msg']}\n")
        return 2
    try:
        asyncio.run(serve(options))
    except OSError as exc:
        sys.stderr.write(
            f"vpsweb simulate-llm: cannot listen on {options.host}:{options.port}: {exc}\n"
        )
        return 1
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vpsweb simulate-llm", description="Offline OpenAI-compatible LLM simulator."
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
