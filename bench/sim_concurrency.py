"""Simulator capacity: 500 concurrent chat completions at 1 s latency.

Run: .venv/bin/python bench/sim_concurrency.py [--requests 500] [--latency-ms 1000]
Prints wall time, per-request p50/p95 and wall/latency, once with a light aiohttp
client (the simulator's capacity) and once with the openai SDK (what a single
client process of the SDK adds).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp
import openai

from vpsweb.llm.simulator_process import start_simulator_process
from vpsweb.workers.processes import stop_process


async def with_aiohttp(url: str, n: int, model: str) -> list[float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            body = {"model": model, "messages": [{"role": "user", "content": str(i)}]}
            async with session.post(url + "/chat/completions", json=body) as resp:
                await resp.json()
            return time.perf_counter() - t0

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def with_openai(url: str, n: int, model: str) -> list[float]:
    client = openai.AsyncOpenAI(base_url=url, api_key="sim", max_retries=0, timeout=60)

    async def one(i: int) -> float:
        t0 = time.perf_counter()
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": str(i)}]
        )
        return time.perf_counter() - t0

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=1000)
    args = parser.parse_args()
    proc, url = start_simulator_process()
    model = f"sim-slow{args.latency_ms}"
    try:
        for name, fn in (("aiohttp client", with_aiohttp), ("openai SDK", with_openai)):
            t0 = time.perf_counter()
            times = sorted(asyncio.run(fn(url, args.requests, model)))
            wall = time.perf_counter() - t0
            p95 = times[int(0.95 * (len(times) - 1))]
            print(
                f"{name:<15} {args.requests} requests: wall {wall:.2f} s, "
                f"p50 {statistics.median(times):.3f} s, p95 {p95:.3f} s, "
                f"wall/latency {wall / (args.latency_ms / 1000):.2f}"
            )
    finally:
        stop_process(proc)


if __name__ == "__main__":
    main()
