"""Retrieval quality on the Vaswani collection: recall@10 and nDCG@10 for dense, BM25 and hybrid,
with the current BM25 analyzer (Snowball) and, after re-analysing the same index, the first one
(the light suffix stripper): the baseline, measured in the same run.

python -m bench.retrieval_quality [--data ../shared/data] [--embedder all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from bench.datasets import default_data_dir, load_vaswani


def ndcg_at_k(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall_at_k(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def _evaluate(kb, queries: dict[str, str], qrels: dict[str, set[str]], mode: str) -> dict:
    rec, nd = [], []
    for qid, q in queries.items():
        rel = qrels.get(qid, set())
        if not rel:
            continue
        ranked = [h.doc_id for h in kb.search(q, k=10, mode=mode)]
        rec.append(recall_at_k(ranked, rel))
        nd.append(ndcg_at_k(ranked, rel))
    return {"recall@10": round(sum(rec) / len(rec), 4), "ndcg@10": round(sum(nd) / len(nd), 4)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--embedder", default="all-MiniLM-L6-v2")
    ap.add_argument("--backend", default="onnx", help="torch | onnx | onnx-int8")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from indexes.analyzer import LEGACY_ANALYZER
    from indexes.text import Document, TextIndex

    docs, queries, qrels = load_vaswani(args.data)
    out: dict = {"docs": len(docs), "queries": len(queries), "embedder": args.embedder, "backend": args.backend}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with TextIndex.open(Path(tmp) / "kb", args.embedder, chunk_tokens=0, embedder_backend=args.backend) as kb:
            kb.add([Document(id=i, text=t) for i, t in docs.items()])
            out["index_seconds"] = round(time.perf_counter() - t0, 1)
            out["analyzer"] = kb.analyzer
            for mode in ("dense", "bm25", "hybrid"):
                out[mode] = _evaluate(kb, queries, qrels, mode)
            kb.reanalyze(LEGACY_ANALYZER, show_progress=False)  # FTS only: the vectors stay
            out["before"] = {"analyzer": LEGACY_ANALYZER}
            for mode in ("bm25", "hybrid"):
                out["before"][mode] = _evaluate(kb, queries, qrels, mode)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"Vaswani: {out['docs']} docs, {out['queries']} queries, embedder {out['embedder']} ({args.backend}) "
            f"(indexed in {out['index_seconds']}s)"
        )
        for mode in ("dense", "bm25", "hybrid"):
            print(f"  {mode:7s} recall@10 {out[mode]['recall@10']:.4f}  nDCG@10 {out[mode]['ndcg@10']:.4f}  ", end="")
            before = out["before"].get(mode)
            print(
                f"(before, {LEGACY_ANALYZER}: recall@10 {before['recall@10']:.4f}  nDCG@10 {before['ndcg@10']:.4f})"
                if before
                else "(the analyzer plays no part)"
            )
        print(f"  BM25 analyzer: {out['analyzer']}")
    return out


if __name__ == "__main__":
    main()
