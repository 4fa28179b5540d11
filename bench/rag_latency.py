"""rag_answer latency with the offline default LLM: time to first token and decode tokens/s for
4-passage questions over the seed articles, with the breakdown (retrieve, prompt build, prefill,
decode), and the peak RSS of a fresh process that has answered one question.

Baselines measured in the same run: the same questions with untrimmed evidence (the whole 4
chunks) and with a cold system prompt (KV cache reset before each question); and, as an option,
a smaller evidence budget (--small-budget), to show what a shorter TTFT costs in evidence; and
concise answers decoded as verbatim copies (the default) against free decoding, the cost of the
copy constraint. Then raw llama.cpp rows per build (AMX on and off where the CPU has AMX), the memory
bandwidth and decode as a share of its limit (bench.llm_speed; its --sweep tries settings and model files).

    .venv/bin/python -m bench rag_latency            # or: python bench/rag_latency.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = [
    "什么是边缘AI？它有什么优势？",
    "AI大模型的定义是什么？",
    "多模态大模型可以应用在哪些场景？",
    "生成式AI目前面临哪些挑战？",
    "AI应用架构师在2024年应该关注哪些研发方向？",
]


def open_kb(data: Path):
    from bench.datasets import load_seed_articles
    from indexes.text import Document, TextIndex
    from polymodal.config import Config

    cfg = Config()
    folder = cfg.paths.cache() / "bench" / f"seed-articles-kb-{cfg.kb.chunk_tokens}"
    index = TextIndex.open(
        folder, "use-multilingual-v3", chunk_tokens=cfg.kb.chunk_tokens, chunk_overlap=cfg.kb.chunk_overlap
    )
    articles = load_seed_articles(data)
    if index.count() != len(articles):
        index.upsert(
            [
                Document(id=name, text=text, source=str(Path(data) / "seed-articles" / name))
                for name, text in articles.items()
            ]
        )
    return index


def one_round(tool, label: str, reset: bool, questions: list[str], concise: bool = False) -> dict:
    rows = []
    for q in questions:
        if reset:
            tool.llm.forget()  # drop the KV cache and the prefix snapshots: the system prompt is prefilled again
        t0 = time.perf_counter()
        first = None
        for ev in tool.stream(q, k=4, concise=concise):
            if isinstance(ev, str) and first is None:
                first = time.perf_counter() - t0
            res = ev
        t = res.timings
        rows.append(
            {
                "ttft": first if first is not None else t.retrieve + t.prompt + t.prefill,
                "retrieve": t.retrieve,
                "prompt_build": t.prompt,
                "prefill": t.prefill,
                "decode": t.decode,
                "prompt_tokens": t.prompt_tokens,
                "cached": t.cached_prompt_tokens,
                "new_prompt_tokens": t.prompt_tokens - t.cached_prompt_tokens,
                "completion_tokens": t.completion_tokens,
                "recheck": t.recheck,
                "type_check": t.type_check,
                "decode_tok_s": (t.completion_tokens - 1) / t.decode if t.decode > 0 else 0.0,
                "found": res.found,
            }
        )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "found"}
    prefill_rate = statistics.median(r["new_prompt_tokens"] / r["prefill"] for r in rows if r["prefill"] > 0)
    print(
        f"{label:<34} TTFT {med['ttft']:.2f}s = retrieve {med['retrieve']:.3f} + build {med['prompt_build']:.3f} "
        f"+ prefill {med['prefill']:.2f}s ({med['new_prompt_tokens']:.0f} new of {med['prompt_tokens']:.0f} prompt "
        f"tokens, {prefill_rate:.0f} tok/s); decode {med['decode_tok_s']:.1f} tok/s over "
        f"{med['completion_tokens']:.0f} tokens; answered {sum(r['found'] for r in rows)}/{len(rows)}"
        + (f"; then the re-ask {med['recheck']:.2f}s" if med["recheck"] else "")
        + (f" and the answer-type check {med['type_check']:.2f}s" if med["type_check"] else ""),
        flush=True,
    )
    return {"label": label, "median": med, "prefill_tok_s": prefill_rate, "rows": rows}


def raw_decode(llm) -> float:
    llm.generate([{"role": "user", "content": "Count from 1 to 60, separated by spaces."}], max_tokens=120)
    s = llm.last_stats()
    rate = (s.completion_tokens - 1) / s.decode_s if s.decode_s else 0.0
    print(f"{'raw llama.cpp decode (no RAG)':<34} {rate:.1f} tok/s over {s.completion_tokens} tokens", flush=True)
    return rate


def peak_rss_one_question(data: Path, config: str | None) -> float:
    """A fresh process answers one question; its peak RSS in MiB."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.rag_latency",
            "--data",
            str(data),
            "--one",
            *(["--config", config] if config else []),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def main(argv: list[str] | None = None) -> int:
    from bench.datasets import default_data_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", default=None, help="polymodal config TOML (e.g. [llm] n_threads)")
    ap.add_argument("--questions", type=int, default=len(QUESTIONS), help="how many of the questions per round")
    ap.add_argument(
        "--small-budget",
        type=int,
        default=200,
        help="also time this evidence budget (tokens): what a 3 s TTFT costs in evidence",
    )
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    data = Path(args.data)

    from polymodal.config import load_config
    from tools.llm import get_chat_model
    from tools.rag import RagAnswerTool

    cfg = load_config(args.config)
    index = open_kb(data)
    llm = get_chat_model(cfg.llm, cfg.paths.cache())
    tool = RagAnswerTool(index.folder, config=cfg, index=index, llm=llm)
    if args.one:
        res = tool.run(QUESTIONS[0], k=4)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_rss_mib": peak, "found": res.found}))
        return 0
    import os

    print(
        f"rag_latency: {cfg.llm.model} via {cfg.llm.backend}, n_ctx {cfg.llm.n_ctx}, threads "
        f"{cfg.llm.n_threads or os.cpu_count()}, KB {index.count()} docs / {index.count_chunks()} chunks, "
        f"{args.questions} questions, k=4",
        flush=True,
    )
    t0 = time.perf_counter()
    _ = llm.llm
    print(f"{'model load':<34} {time.perf_counter() - t0:.1f}s", flush=True)
    qs = QUESTIONS[: args.questions]
    report = {"decode_raw_tok_s": raw_decode(llm)}
    tool.warm_prefix("zh", False)
    report["trimmed_warm"] = one_round(
        tool, f"rag (budget {tool.evidence_tokens} tok, warm)", reset=False, questions=qs
    )
    report["trimmed_cold"] = one_round(tool, "baseline: cold system prompt", reset=True, questions=qs)
    full = RagAnswerTool(index.folder, config=cfg, index=index, llm=llm, evidence_tokens=100_000)
    full.warm_prefix("zh", False)
    report["untrimmed_warm"] = one_round(full, "baseline: untrimmed evidence", reset=False, questions=qs)
    if args.small_budget:
        small = RagAnswerTool(index.folder, config=cfg, index=index, llm=llm, evidence_tokens=args.small_budget)
        small.warm_prefix("zh", False)
        report["small_budget_warm"] = one_round(
            small, f"option: budget {args.small_budget} tok, warm", reset=False, questions=qs
        )
    tool.warm_prefix("zh", True)  # concise answers: copied spans (extractive) against free decoding
    report["concise_extractive"] = one_round(
        tool, "concise, extractive (default)", reset=False, questions=qs, concise=True
    )
    free = RagAnswerTool(index.folder, config=cfg, index=index, llm=llm, extractive=False)
    report["concise_free"] = one_round(
        free, "baseline: concise, free decoding", reset=False, questions=qs, concise=True
    )
    report["peak_rss_mib_one_question"] = peak_rss_one_question(data, args.config)
    print(f"{'peak RSS, one answered question':<34} {report['peak_rss_mib_one_question']:.0f} MiB", flush=True)
    from bench.llm_speed import build_rows, default_prompt

    llm.unload()  # the rows load the model in child processes (one per llama.cpp build)
    report["builds"] = build_rows(default_prompt(data), llm.model_path)
    if args.out:
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
