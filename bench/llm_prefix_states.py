"""A mixed chat on the offline default LLM: requests that need the LLM planner alternate with
knowledge-base questions (rag_answer over the seed articles), so each prompt kind evicts the
other's fixed prefix from llama.cpp's one KV cache. Prints, per kind, the prompt tokens actually
prefilled and the time to the first token, with the KV snapshots of fixed prefixes
(`tools.llm.kv_states`, the default 128 MB) and, as the baseline in the same run, without them (0 MB).
Then raw llama.cpp rows per build (AMX on and off where the CPU has AMX), the memory bandwidth and
decode as a share of its limit (bench.llm_speed).

    .venv/bin/python -m bench llm_prefix_states          # or: python bench/llm_prefix_states.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

PLAN_REQUESTS = [
    "温室的湿度是多少？然后搜一下有没有花的照片",
    "Explain CLIP from my notes and draw a cat",
    "先总结知识库里关于多模态的内容，再画一张机器人的图",
]
RAG_QUESTIONS = ["什么是边缘AI？它有什么优势？", "生成式AI目前面临哪些挑战？", "多模态大模型可以应用在哪些场景？"]


def mixed_session(llm, tool, rounds: int, budget_mb: int) -> dict:
    from orchestrator.prompts import plan_messages, plan_schema
    from orchestrator.testing import fake_tools

    tools = {t.name: t for t in fake_tools()}
    schema = plan_schema(tools)
    llm.forget(prefix_cache_mb=budget_mb)
    rows: dict[str, list[dict]] = {"plan": [], "rag": []}
    for i in range(rounds):
        llm.generate(plan_messages(tools, PLAN_REQUESTS[i % len(PLAN_REQUESTS)]), json_schema=schema, max_tokens=120)
        s = llm.last_stats()
        rows["plan"].append({"ttft_s": s.prefill_s, "new_prompt_tokens": s.prompt_tokens - s.cached_prompt_tokens})
        t0 = time.perf_counter()
        first = None
        for ev in tool.stream(RAG_QUESTIONS[i % len(RAG_QUESTIONS)], k=4):
            first = first or (time.perf_counter() - t0 if isinstance(ev, str) else None)
            res = ev
        t = res.timings
        rows["rag"].append(
            {"ttft_s": first or t.prefill, "new_prompt_tokens": t.prompt_tokens - t.cached_prompt_tokens}
        )
    skip = 1  # round 1 prefills every prefix cold in both settings: report the rounds after it
    out = {"budget_mb": budget_mb, "rounds": rounds, "kept_mb": round(llm.kept_prefix_bytes / 2**20, 1)}
    for kind, rs in rows.items():
        later = rs[skip:] or rs
        out[kind] = {
            "ttft_s_median": round(statistics.median(r["ttft_s"] for r in later), 2),
            "new_prompt_tokens_median": int(statistics.median(r["new_prompt_tokens"] for r in later)),
            "first_round_ttft_s": round(rs[0]["ttft_s"], 2),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    from bench.datasets import default_data_dir
    from bench.rag_latency import open_kb
    from polymodal.config import Config
    from tools.llm import get_chat_model
    from tools.rag import RagAnswerTool

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="the shared data folder (seed-articles/)")
    ap.add_argument("--rounds", type=int, default=4, help="plan + question pairs per setting")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    cfg = Config()
    llm = get_chat_model(cfg.llm, cfg.paths.cache())
    index = open_kb(args.data)
    tool = RagAnswerTool(index.folder, config=cfg, llm=llm, index=index)
    result = {
        "with_snapshots": mixed_session(llm, tool, args.rounds, cfg.llm.prefix_cache_mb or 128),
        "baseline_no_snapshots": mixed_session(llm, tool, args.rounds, 0),
    }
    index.close()
    if not args.json:
        _print(result)
    from bench.llm_speed import build_rows, default_prompt

    llm.unload()  # the rows load the model in child processes (one per llama.cpp build)
    result["builds"] = build_rows(default_prompt(args.data), llm.model_path)
    if args.json:
        print(json.dumps(result))


def _print(result: dict) -> None:
    for name, r in result.items():
        print(f"{name} ({r['budget_mb']} MB, {r['kept_mb']} MB kept, {r['rounds']} rounds; medians after round 1)")
        for kind in ("plan", "rag"):
            k = r[kind]
            print(
                f"  {kind:4s} TTFT {k['ttft_s_median']:5.2f} s   new prompt tokens {k['new_prompt_tokens_median']:4d}"
                f"   (round 1: {k['first_round_ttft_s']:.2f} s)"
            )


if __name__ == "__main__":
    main()
