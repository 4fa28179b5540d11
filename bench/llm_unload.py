"""What evicting the LLM gives back: process RSS with nothing loaded (the baseline), with the
offline GGUF loaded and one answer generated, after the model manager evicts it for a 2 GB model,
and after the next call loads it again (with its load time).

    .venv/bin/python -m bench llm_unload [--json]
"""

from __future__ import annotations

import argparse
import json
import time

HI = [{"role": "user", "content": "Say hi."}]


def main(argv: list[str] | None = None) -> dict:
    from orchestrator.models import LLM_SIZE_MB, ModelManager, process_rss_mb

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    models = ModelManager(budget_mb=LLM_SIZE_MB + 1000)
    rows = {"nothing loaded (baseline)": process_rss_mb()}
    llm = models.llm()
    t0 = time.perf_counter()
    llm.generate(HI, max_tokens=4)
    first_s = time.perf_counter() - t0
    rows["LLM loaded, one answer"] = process_rss_mb()
    models.get("diffusion", lambda: object(), size_mb=2000)  # does not fit beside the LLM: it is evicted
    rows[f"after eviction ({', '.join(models.evictions)})"] = process_rss_mb()
    t0 = time.perf_counter()
    models.llm().generate(HI, max_tokens=4)
    again_s = time.perf_counter() - t0
    rows["next call (reloaded)"] = process_rss_mb()
    result = {"rss_mb": {k: round(v) for k, v in rows.items()}, "first_call_s": first_s, "reload_call_s": again_s}
    if args.json:
        print(json.dumps(result))
        return result
    print(f"process RSS, {llm.name} via llama.cpp (manager budget {models.budget_mb:g} MB):")
    for what, mb in rows.items():
        print(f"  {what:34s} {mb:7.0f} MB")
    loaded, evicted = list(rows.values())[1:3]
    print(f"  eviction freed {loaded - evicted:.0f} MB; first call {first_s:.2f} s, after eviction {again_s:.2f} s")
    return result


if __name__ == "__main__":
    main()
