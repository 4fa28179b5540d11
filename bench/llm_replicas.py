"""The offline LLM on Ray Serve replicas (`polymodal serve-llm`): the same short prompts sent all at
once, through the `openai` client (streamed), to 1 replica with 2 threads and to 2 replicas with 1
thread each; the baseline, measured in the same run, is llama.cpp in this process (2 threads) called
from as many threads. Requests/s, p50/p95 latency and time to first token (TTFT), per setup.

    .venv/bin/python -m bench llm_replicas [--prompts 8] [--max-tokens 32] [--json]

Runs on a local Ray cluster of 2 CPUs started in this process (what `serve-llm` starts by itself).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

PROMPTS = [
    "Name three primary colors.",
    "What is the boiling point of water in Celsius?",
    "Write a haiku about autumn leaves.",
    "Give one synonym for 'happy'.",
    "How many legs does a spider have?",
    "Translate 'good morning' into French.",
    "What is 12 times 7?",
    "Name a planet with rings.",
    "Suggest a name for a black cat.",
    "What does CPU stand for?",
    "List two fruits that are red.",
    "What is the opposite of 'cold'?",
]


def _one(stream: Callable[[list[dict]], Iterator[str]], prompt: str) -> dict[str, float]:
    t0 = time.perf_counter()
    first = None
    for piece in stream([{"role": "user", "content": prompt}]):
        if piece and first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return {"latency_s": end - t0, "ttft_s": (first or end) - t0}


def _measure(stream: Callable[[list[dict]], Iterator[str]], prompts: list[str]) -> dict[str, float]:
    """Every prompt sent at once; each request's latency and TTFT include its wait for a free model."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(prompts)) as pool:
        runs = list(pool.map(lambda p: _one(stream, p), prompts))
    wall = time.perf_counter() - t0
    lat = sorted(r["latency_s"] for r in runs)
    ttft = sorted(r["ttft_s"] for r in runs)
    return {
        "requests_per_s": len(prompts) / wall,
        "wall_s": wall,
        "latency_p50_s": statistics.median(lat),
        "latency_p95_s": _p95(lat),
        "ttft_p50_s": statistics.median(ttft),
        "ttft_p95_s": _p95(ttft),
    }


def _p95(values: list[float]) -> float:
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_direct(llm_config: Any, cache: Any, prompts: list[str], max_tokens: int) -> dict[str, float]:
    from tools.llm.llama_cpp import LlamaCppChatModel

    llm = LlamaCppChatModel.from_config(dataclasses.replace(llm_config, n_threads=2), cache)
    llm.generate([{"role": "user", "content": "Hi"}], max_tokens=1)  # loaded, as a replica is
    try:
        return _measure(lambda m: llm.stream(m, max_tokens=max_tokens), prompts)
    finally:
        llm.unload()


def bench_serve(
    llm_config: Any, cache: Any, prompts: list[str], max_tokens: int, replicas: int, threads: int, port: int
) -> dict[str, float]:
    import openai

    from tools.llm.ray_serve import deploy_llm, undeploy_llm

    served = deploy_llm(llm_config, cache, replicas=replicas, threads=threads, port=port)
    client = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=600)

    def stream(messages: list[dict]) -> Iterator[str]:
        chunks = client.chat.completions.create(
            model=served.model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True
        )
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    try:
        return _measure(stream, prompts)
    finally:
        undeploy_llm(served.app)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=8, help=f"how many prompts (at most {len(PROMPTS)})")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    from polymodal.cluster import connect, disconnect
    from polymodal.config import Config

    config = Config()
    cache = config.paths.cache()
    prompts = PROMPTS[: max(1, min(args.prompts, len(PROMPTS)))]
    rows = {"in-process llama.cpp, 2 threads (baseline)": bench_direct(config.llm, cache, prompts, args.max_tokens)}
    connect("local", num_cpus=2)
    port = _free_port()
    try:
        for replicas, threads in ((1, 2), (2, 1)):
            name = f"Ray Serve, {replicas} replica(s) x {threads} thread(s)"
            rows[name] = bench_serve(config.llm, cache, prompts, args.max_tokens, replicas, threads, port)
    finally:
        disconnect()
    result = {
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "rows": {k: {m: round(v, 3) for m, v in r.items()} for k, r in rows.items()},
    }
    if args.json:
        print(json.dumps(result))
        return result
    print(f"{len(prompts)} prompts at once, {args.max_tokens} tokens max, greedy; {os.cpu_count()} CPUs, "
          f"load {result['loadavg_1m']}")  # fmt: skip
    print(f"  {'setup':46s} {'req/s':>6s} {'p50 s':>6s} {'p95 s':>6s} {'TTFT p50':>9s} {'TTFT p95':>9s}")
    for name, r in rows.items():
        print(
            f"  {name:46s} {r['requests_per_s']:6.2f} {r['latency_p50_s']:6.2f} {r['latency_p95_s']:6.2f} "
            f"{r['ttft_p50_s']:9.2f} {r['ttft_p95_s']:9.2f}"
        )
    return result


if __name__ == "__main__":
    main()
