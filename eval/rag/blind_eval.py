"""Evaluate rag_answer the way `polymodal ask` answers (default mode, k=4) on the blind sets:
questions written by helpers who saw no code, over the seed articles (zh) and the six English
documents in eval/rag/blind_en/docs (en). Split dev/test before anyone looked; tune on dev only.

    .venv/bin/python eval/rag/blind_eval.py --set zh --split dev --out zh-dev.json
    .venv/bin/python eval/rag/blind_eval.py --set en --split test
    .venv/bin/python eval/rag/blind_eval.py --set zh --split dev --record --out zh-dev-raw.json

An answerable question counts as answered when the answer is not declined and contains a gold
span (any one of them; for list/summary questions the share of items covered is reported too).
An unanswerable question counts as declined when the tool declines. `--record` turns every
decline limit off (the signals are still computed and stored per question), so a run's records
show what each limit would have done (`--policy` replays them with other limits).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def contains(text: str, span: str) -> bool:
    return _norm(span) in _norm(text)


def corpus(which: str, data: Path) -> list[Path]:
    if which == "zh":
        return sorted((data / "seed-articles").glob("*.txt"))
    return sorted((HERE / "blind_en" / "docs").glob("*.md"))


def open_kb(which: str, data: Path):
    """A knowledge base of the set's documents, built once per content hash (as `polymodal ingest`)."""
    from indexes.ingest import ingest_paths
    from indexes.text import TextIndex
    from polymodal.config import Config

    files = corpus(which, data)
    if not files:
        sys.exit(f"no documents for the {which} set (looked under {data})")
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]
    config = Config()
    folder = config.paths.cache() / "eval" / f"blind-{which}-{digest}"
    if not (folder / "manifest.json").exists():
        ingest_paths(folder, files, config=config, show_progress=False)
    return TextIndex.open(folder, read_only=True, embedder_backend=config.embedder.backend), folder


def make_tool(index, folder: Path, record: bool, overrides: dict):
    from polymodal.config import Config
    from tools.rag import RagAnswerTool

    kw = dict(overrides)
    if record:  # compute every signal, decide on none
        kw.update(min_coverage=0.0, max_not_found=1.01, min_grounding=0.0)
    return RagAnswerTool(folder, config=Config(), index=index, **kw)


def ask(tool, row: dict) -> dict:
    t0 = time.perf_counter()
    res = tool.run(row["question"], k=4)
    seconds = time.perf_counter() - t0
    answers = row.get("answers", [])
    hit = [contains(res.answer, a) for a in answers]
    draft_hit = [contains(res.draft or res.answer, a) for a in answers]
    return {
        "id": row["id"],
        "question": row["question"],
        "kind": row.get("kind", ""),
        "answerable": bool(answers),
        "found": res.found,
        "reason": res.reason,
        "answer": res.answer,
        "draft": res.draft,
        "gold_any": any(hit),
        "gold_share": sum(hit) / len(hit) if hit else 0.0,
        "draft_gold_any": any(draft_hit),
        "evidence_has_gold": any(contains(p.text, a) for p in res.passages for a in answers),
        "coverage": res.coverage,
        "not_found_probability": res.not_found_probability,
        "grounding": res.grounding,
        "citations": len(res.citations),
        "seconds": round(seconds, 2),
        "ttft": round(res.timings.prefill + res.timings.retrieve + res.timings.prompt, 2),
    }


def summarize(records: list[dict]) -> dict:
    ans = [r for r in records if r["answerable"]]
    un = [r for r in records if not r["answerable"]]

    def pct(n: int, d: int) -> float:
        return round(100.0 * n / d, 1) if d else 0.0

    reasons: dict[str, int] = {}
    for r in ans:
        if not (r["found"] and r["gold_any"]):
            key = re.sub(r"\s*\(.*", "", r["reason"] or ("answered without the gold fact" if r["found"] else "?"))
            reasons[key] = reasons.get(key, 0) + 1
    return {
        "answerable": len(ans),
        "unanswerable": len(un),
        "answered_with_gold": pct(sum(r["found"] and r["gold_any"] for r in ans), len(ans)),
        "answered": pct(sum(r["found"] for r in ans), len(ans)),
        "list_items_covered": round(statistics.mean([r["gold_share"] for r in ans if r["found"]] or [0.0]), 3),
        "evidence_has_gold": pct(sum(r["evidence_has_gold"] for r in ans), len(ans)),
        "unanswerable_declined": pct(sum(not r["found"] for r in un), len(un)),
        "misses_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "seconds_p50": statistics.median([r["seconds"] for r in records]) if records else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("zh", "en"), required=True)
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="shared data (the seed articles)")
    ap.add_argument("--record", action="store_true", help="decline limits off; every signal recorded")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--every", type=int, default=1, help="every Nth question (a spread sample for slow runs)")
    ap.add_argument("--set-param", action="append", default=[], metavar="NAME=VALUE", help="a RagAnswerTool setting")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)

    rows = [json.loads(x) for x in (HERE / f"blind_{args.set}" / f"{args.split}.jsonl").read_text("utf-8").splitlines()]
    rows = rows[:: max(1, args.every)]
    rows = rows[: args.limit] if args.limit else rows
    overrides = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.set_param)}
    index, folder = open_kb(args.set, Path(args.data))
    tool = make_tool(index, folder, args.record, overrides)
    records = []
    partial = Path(args.out + ".partial.jsonl") if args.out else None
    for i, row in enumerate(rows, 1):
        records.append(ask(tool, row))
        r = records[-1]
        if partial is not None:  # a long run keeps what it measured if it is stopped
            with partial.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        mark = ("+" if r["found"] and r["gold_any"] else "-") if r["answerable"] else ("+" if not r["found"] else "-")
        print(f"[{i}/{len(rows)}] {mark} {r['id']} {r['seconds']:.1f}s {r['reason'][:60]}", file=sys.stderr)
    report = {"set": args.set, "split": args.split, "record": args.record, "overrides": overrides, **summarize(records)}
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({**report, "records": records}, ensure_ascii=False, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
