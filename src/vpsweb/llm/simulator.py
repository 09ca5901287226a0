"""The offline LLM simulator: an asynchronous OpenAI-compatible HTTP server.

Demos, tests and benchmarks talk to it through the real `openai` SDK, so they
exercise the production path. Latency is an asyncio sleep, so one process holds
hundreds of requests at once. Faults come two ways: random rates (for load and
chaos runs) and directives in the model name (for deterministic tests):

* ``fail401`` / ``fail400`` / ``fail500``: always that status; ``hang``: never answer
  in time; ``malformed``: always an answer without the step's tags;
* ``429xK`` / ``500xK`` / ``malformedxK``: the first K identical requests get it;
* ``slowNNN``: NNN ms latency for this request.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import signal
import sys
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from vpsweb.llm import sim_answers

LATENCY_HEADER = "X-Vpsweb-Latency-Ms"
_COUNTED = re.compile(r"(429|500|malformed)x(\d+)")
_SLOW = re.compile(r"slow(\d+)")


class SimulatorOptions(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_hang: float = Field(default=0.0, ge=0, le=1)
    rate_malformed: float = Field(default=0.0, ge=0, le=1)
    retry_after_ms: float = Field(default=1000.0, ge=0)
    hang_s: float = Field(default=3600.0, ge=0)
    seed: int = 0


FIELDS = list(SimulatorOptions.model_fields)


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "code": code}}
    return web.json_response(body, status=status)


class Simulator:
    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.random = random.Random(options.seed)
        self.seen: Counter[str] = Counter()
        self.stats: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        self.stats = {
            "total_requests": 0,
            "in_flight": 0,
            "max_in_flight": 0,
            "by_step": Counter(),
            "by_status": Counter(),
            "by_model": Counter(),
        }

    def _latency_s(self, model: str) -> float:
        m = _SLOW.search(model)
        mean = float(m.group(1)) if m else self.options.latency_ms
        jitter = self.options.jitter_ms
        ms = mean + (self.random.uniform(-jitter, jitter) if jitter else 0.0)
        return max(0.0, ms) / 1000

    def _fault(self, model: str, key: str) -> str | None:
        """Which fault this request gets, if any: directives first, then random rates."""
        for name in ("fail401", "fail400", "fail500", "hang", "malformed"):
            if name in model and not _COUNTED.search(model):
                return name
        m = _COUNTED.search(model)
        if m:
            self.seen[key] += 1
            if self.seen[key] <= int(m.group(2)):
                return {"429": "rate429", "500": "fail500"}.get(m.group(1), "malformed")
        o, r = self.options, self.random.random()
        for name, rate in (
            ("rate429", o.rate_429),
            ("fail500", o.rate_500),
            ("hang", o.rate_hang),
            ("malformed", o.rate_malformed),
        ):
            if r < rate:
                return name
            r -= rate
        return None

    async def chat(self, request: web.Request) -> web.Response:
        self.stats["total_requests"] += 1
        self.stats["in_flight"] += 1
        self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])
        try:
            response = await self._chat(request)
        finally:
            self.stats["in_flight"] -= 1
        self.stats["by_status"][str(response.status)] += 1
        return response

    async def _chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body.get("model", "sim"))
        except (json.JSONDecodeError, KeyError, TypeError):
            return _error(
                400, "body must be JSON with 'model' and 'messages'", "invalid_request_error"
            )
        if body.get("stream"):
            return _error(
                400, "streaming is not supported by the simulator", "invalid_request_error"
            )
        text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        temperature = float(body.get("temperature") or 0.0)
        self.stats["by_model"][model] += 1
        key = hashlib.sha256(f"{model}\x1f{text}".encode()).hexdigest()
        fault = self._fault(model.lower(), key)
        if fault == "fail401":
            # Like real providers, echo a masked form of the key that was sent.
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
            masked = f"{sent[:3]}****{sent[-4:]}" if len(sent) > 8 else "****"
            return _error(
                401,
                f"Incorrect API key provided: {masked}.",
                "invalid_request_error",
                "invalid_api_key",
            )
        if fault == "fail400":
            return _error(400, "Invalid request", "invalid_request_error")
        latency = self._latency_s(model.lower())
        if fault == "hang":
            await asyncio.sleep(self.options.hang_s)
        await asyncio.sleep(latency)
        if fault == "rate429":
            after = self.options.retry_after_ms
            resp = _error(429, "Rate limit reached", "rate_limit_error")
            resp.headers["Retry-After"] = str(max(1, int(-(-after // 1000))))
            resp.headers["retry-after-ms"] = str(int(after))
            return resp
        if fault == "fail500":
            return _error(500, "The server had an error", "server_error")
        step, content = sim_answers.answer(text, temperature=temperature, seed=self.options.seed)
        self.stats["by_step"][step or "unknown"] += 1
        if fault == "malformed":
            content = sim_answers.MALFORMED
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if "reason" in model.lower():
            message["reasoning_content"] = sim_answers.reasoning_for(text, self.options.seed)
        prompt_tokens = sim_answers.count_tokens(text)
        completion_tokens = sim_answers.count_tokens(content)
        latency_ms = round(latency * 1000, 3)
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "vpsweb_latency_ms": latency_ms,
        }
        return web.json_response(payload, headers={LATENCY_HEADER: str(latency_ms)})

    async def models(self, request: web.Request) -> web.Response:
        ids = ["vpsweb-sim", "deepseek-chat", "deepseek-reasoner"]
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": i, "object": "model", "owned_by": "vpsweb"} for i in ids],
            }
        )

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {k: dict(v) if isinstance(v, Counter) else v for k, v in self.stats.items()}
        )

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def build_app(options: SimulatorOptions) -> web.Application:
    sim = Simulator(options)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app["simulator"] = sim
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/stats", sim.get_stats)
    app.router.add_post("/stats/reset", sim.reset_stats)
    return app


async def serve(options: SimulatorOptions) -> None:
    runner = web.AppRunner(build_app(options), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, backlog=2048)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else options.port
    print(f"vpsweb simulator listening on http://{options.host}:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags; each defaults to its VPSWEB_SIM_* environment variable."""
    helps = {
        "host": "bind address",
        "port": "port (0: any free one)",
        "latency_ms": "mean latency per answer",
        "jitter_ms": "uniform ± jitter",
        "rate_429": "fraction answered 429 with Retry-After",
        "rate_500": "fraction answered 500",
        "rate_hang": "fraction that never answer",
        "rate_malformed": "fraction answered without the step's tags",
        "retry_after_ms": "Retry-After of 429 answers",
        "hang_s": "how long a hang lasts",
        "seed": "random seed (answers are deterministic per prompt and seed)",
    }
    for name in FIELDS:
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            help=f"{helps[name]} (env VPSWEB_SIM_{name.upper()})",
        )


def options_from(ns: argparse.Namespace, env: dict[str, str] | None = None) -> SimulatorOptions:
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(ns, name, None)
        if value is None:
            value = env.get(f"VPSWEB_SIM_{name.upper()}")
        if value is not None:
            values[name] = value
    return SimulatorOptions.model_validate(values)


def run_from_args(ns: argparse.Namespace) -> int:
    try:
        options = options_from(ns)
    except ValidationError as exc:
        for err in exc.errors():
            sys.stderr.write(f"vpsweb simulate-llm: --{err['loc'][0]}: {err['msg']}\n")
        return 2
    asyncio.run(serve(options))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vpsweb simulate-llm")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
