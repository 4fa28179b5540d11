"""Planner latency: router decision p50 and LLM plan p50 for 1-, 2- and 3-step plans.

    python -m bench.orchestrator_latency                  # router + offline LLM (default config)
    python -m bench.orchestrator_latency --no-llm         # router only
    python -m bench.orchestrator_latency --llm-runs 2     # fewer LLM plans per size

Baselines measured in the same run: the embedding alone (`embed_query` of the same requests,
the floor of an embedding router), and for the LLM the same prompt decoded without the JSON
schema (the cost of grammar-constrained decoding). The load average is printed: on a shared
2-core machine it decides the LLM numbers more than anything here.
Targets (issue 7): router p50 <= 30 ms; 3-step LLM plan p50 <= 3 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def bench_router(rows: list[dict], embedder_name: str) -> dict:
    from indexes.embedders import get_embedder
    from orchestrator.router import FastRouter
    from orchestrator.testing import fake_tools

    tools = {t.name: t for t in fake_tools()}
    emb = get_embedder(embedder_name)
    router = FastRouter(tools, embedder=emb)
    router.warm_up()
    emb.embed_query("warm up")
    texts = [r["text"] for r in rows]
    route_ms, embed_ms, sim_ms, decided = [], [], [], 0
    for t in texts:
        t0 = time.perf_counter()
        route = router.route(t)
        route_ms.append((time.perf_counter() - t0) * 1000)
        decided += route.decided or route.compound
        t0 = time.perf_counter()
        emb.embed_query(t)
        embed_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        router.similarity(t)  # the embedding stage alone, as if no cue fired
        sim_ms.append((time.perf_counter() - t0) * 1000)
    cue_only = FastRouter(tools, embedder=None)
    cue_ms = []
    for t in texts:
        t0 = time.perf_counter()
        cue_only.route(t)
        cue_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "requests": len(texts),
        "router_ms_p50": round(statistics.median(route_ms), 3),
        "router_ms_p90": round(_p(route_ms, 0.9), 3),
        "router_ms_max": round(max(route_ms), 3),
        "embedding_stage_ms_p50": round(statistics.median(sim_ms), 3),
        "baseline_embed_query_ms_p50": round(statistics.median(embed_ms), 3),
        "cues_only_ms_p50": round(statistics.median(cue_ms), 3),
        "decided_or_decomposed_share": round(decided / len(texts), 3),
    }


def bench_llm(rows: list[dict], runs: int) -> dict:
    from orchestrator.planner import Planner
    from orchestrator.prompts import plan_messages, plan_schema
    from orchestrator.router import FastRouter
    from orchestrator.testing import fake_tools
    from tools.llm import get_chat_model

    tools = {t.name: t for t in fake_tools()}
    llm = get_chat_model()
    planner = Planner(tools, FastRouter(tools), llm=lambda: llm, use_router=False)
    llm.generate(plan_messages(tools, "hello"), max_tokens=1)  # load + prefill the fixed prefix once
    out: dict = {}
    for size in (1, 2, 3):
        sample = [r for r in rows if len(r["tools"]) == size][:runs]
        plan_s, free_s, right = [], [], 0
        for r in sample:
            t0 = time.perf_counter()
            try:
                plan = planner.plan(r["text"])
                right += sorted(plan.tools()) == sorted(r["tools"])
            except Exception as exc:  # noqa: BLE001 - a failed plan still has a latency
                print(f"  plan failed: {r['text']!r}: {exc}")
            plan_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            llm.generate(plan_messages(tools, r["text"]), max_tokens=320)
            free_s.append(time.perf_counter() - t0)
        out[f"{size}_step"] = {
            "n": len(sample),
            "plan_s_p50": round(statistics.median(plan_s), 2) if plan_s else None,
            "baseline_unconstrained_s_p50": round(statistics.median(free_s), 2) if free_s else None,
            "tools_right": right,
        }
    stats = getattr(llm, "last_stats", None)
    if callable(stats):
        out["last_generation"] = str(stats())
    out["schema_bytes"] = len(json.dumps(plan_schema(tools)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", default=str(ROOT / "eval" / "routing" / "requests.jsonl"))
    ap.add_argument("--embedder", default="use-multilingual-v3")
    ap.add_argument("--no-llm", action="store_true")
    ap.add_argument("--llm-runs", type=int, default=3, help="LLM plans per plan size")
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in Path(args.requests).read_text(encoding="utf-8").splitlines() if x.strip()]
    report = {
        "load_average_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "router": bench_router(rows, args.embedder),
    }
    if not args.no_llm:
        report["llm_plan"] = bench_llm(rows, args.llm_runs)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
