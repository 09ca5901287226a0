"""Simulator capacity: 500 concurrent chat completions at 1 s latency.

Run: .venv/bin/python bench/sim_concurrency.py [--requests 500] [--latency-ms 1000]

Prints wall time, per-request p50/p95 and wall/latency for three clients, so the
server's capacity can be told apart from the client's cost:

* a bare aiohttp session (the simulator's own capacity);
* the openai SDK on its default httpx2 transport (what a worker pays by default);
* the openai SDK on its aiohttp transport (``openai.DefaultAioHttpClient``).

A wall/latency near 1 means the requests overlapped instead of queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import httpx2
import openai

from vpsweb.local.processes import stop_process
from vpsweb.local.simulator_process import start_simulator_process

# (wall time of the burst, per-request times); set-up and warm-up stay outside.
Runner = Callable[[str, int, str], Coroutine[Any, Any, tuple[float, list[float]]]]


async def _burst(one: Callable[[int], Awaitable[float]], n: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    times = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0, list(times)


async def with_aiohttp(url: str, n: int, model: str) -> tuple[float, list[float]]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            body = {"model": model, "messages": [{"role": "user", "content": str(i)}]}
            async with session.post(url + "/chat/completions", json=body) as resp:
                resp.raise_for_status()
                await resp.json()
            return time.perf_counter() - t0

        return await _burst(one, n)


async def _sdk(client: openai.AsyncOpenAI, n: int, model: str) -> tuple[float, list[float]]:
    async with client:
        # The SDK builds its response models lazily: keep that out of the measurement.
        await client.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": "warm"}]
        )

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": str(i)}]
            )
            return time.perf_counter() - t0

        return await _burst(one, n)


def _limits(n: int) -> httpx2.Limits:
    return httpx2.Limits(max_connections=n + 100, max_keepalive_connections=n + 100)


async def with_sdk_httpx(url: str, n: int, model: str) -> tuple[float, list[float]]:
    http = openai.DefaultAsyncHttpxClient(limits=_limits(n), timeout=60)
    client = openai.AsyncOpenAI(base_url=url, api_key="sim", max_retries=0, http_client=http)
    return await _sdk(client, n, model)


async def with_sdk_aiohttp(url: str, n: int, model: str) -> tuple[float, list[float]]:
    http = openai.DefaultAioHttpClient(limits=_limits(n), timeout=60)
    client = openai.AsyncOpenAI(base_url=url, api_key="sim", max_retries=0, http_client=http)
    return await _sdk(client, n, model)


CLIENTS: dict[str, Runner] = {
    "aiohttp session": with_aiohttp,
    "SDK, httpx2": with_sdk_httpx,
    "SDK, aiohttp": with_sdk_aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="runs per client")
    args = parser.parse_args()
    n, latency_s = args.requests, args.latency_ms / 1000
    proc, url = start_simulator_process()
    model = f"sim-slow{args.latency_ms}"
    print(f"{n} concurrent requests at {args.latency_ms} ms latency against {url}")
    try:
        for _ in range(args.rounds):
            for name, runner in CLIENTS.items():
                wall, times = asyncio.run(runner(url, n, model))
                times.sort()
                p95 = times[round(0.95 * (len(times) - 1))]
                print(
                    f"{name:<16} wall {wall:5.2f} s  p50 {statistics.median(times):.3f} s  "
                    f"p95 {p95:.3f} s  wall/latency {wall / latency_s:.2f}",
                    flush=True,
                )
    finally:
        stop_process(proc)


if __name__ == "__main__":
    main()
