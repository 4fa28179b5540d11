"""Sharded knowledge bases on the Vaswani collection: one unsharded TextIndex (the baseline, same
run) against ShardedTextIndex with S = 1, 4 and 16 shards, served in-process and by Ray actors (an
in-process local cluster). For each: recall@10 of its fused hybrid ranking against the unsharded
ranking (also with each shard's own BM25 statistics, to show why they are global), recall@10 and
nDCG@10 against Vaswani's relevance judgements, and p50/p95 query latency (the query embedded and
searched, end to end).

python -m bench.sharded_search [--data ../shared/data] [--shards 1,4,16] [--out FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets import default_data_dir, load_vaswani
from bench.retrieval_quality import ndcg_at_k, recall_at_k


class _OnceEmbedder:
    """The real embedder, each document text embedded once for all the indexes built here."""

    def __init__(self, real: Any) -> None:
        self.real, self.name, self.dim = real, real.name, real.dim
        self._vecs: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vecs))
        if todo:
            self._vecs.update(zip(todo, self.real.embed_documents(todo)))
        return np.stack([self._vecs[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.real.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)


def _run(kb: Any, queries: dict[str, str], passes: int, **kw: Any) -> tuple[dict[str, list[str]], list[float]]:
    """Top-10 doc ids per query (first pass) and every search's latency in ms (after a warm-up)."""
    for q in list(queries.values())[:5]:
        kb.search(q, 10, **kw)
    ranked, times = {}, []
    for p in range(passes):
        for qid, q in queries.items():
            t0 = time.perf_counter()
            hits = kb.search(q, 10, **kw)
            times.append((time.perf_counter() - t0) * 1000)
            if p == 0:
                ranked[qid] = [h.doc_id for h in hits]
    return ranked, times


def _same_scores(one: Any, kb: Any, queries: dict[str, str], mode: str) -> float:
    """Share of queries whose top-10 scores in `mode` equal the unsharded ones (ties may swap ids)."""
    same = 0
    for q in queries.values():
        a, b = one.search(q, 10, mode=mode), kb.search(q, 10, mode=mode)
        same += len(a) == len(b) and all(abs(x.score - y.score) <= 1e-5 * max(1.0, abs(x.score)) for x, y in zip(a, b))
    return round(same / len(queries), 4)


def _row(name: str, ranked: dict, times: list[float], base: dict, qrels: dict, own: dict | None = None) -> dict:
    judged = [q for q in ranked if qrels.get(q)]
    row = {
        "index": name,
        "overlap@10": round(float(np.mean([len(set(ranked[q]) & set(base[q])) / 10 for q in ranked])), 4),
        "recall@10": round(float(np.mean([recall_at_k(ranked[q], qrels[q]) for q in judged])), 4),
        "ndcg@10": round(float(np.mean([ndcg_at_k(ranked[q], qrels[q]) for q in judged])), 4),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }
    if own is not None:
        row["overlap@10_shard_bm25"] = round(float(np.mean([len(set(own[q]) & set(base[q])) / 10 for q in own])), 4)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--embedder", default="all-MiniLM-L6-v2")
    ap.add_argument("--shards", default="1,4,16", help="shard counts, comma-separated")
    ap.add_argument("--docs", type=int, default=0, help="only the first N documents (a quick check)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes over the queries")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "sharded_search.json")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from indexes.distributed.shards import ShardedTextIndex
    from indexes.embedders import get_embedder
    from indexes.text import Document, TextIndex
    from polymodal.cluster import connect, disconnect

    docs, queries, qrels = load_vaswani(args.data)
    if args.docs:
        docs = dict(list(docs.items())[: args.docs])
    counts = [int(s) for s in args.shards.split(",")]
    emb = _OnceEmbedder(get_embedder(args.embedder))
    batch = [Document(id=i, text=t, source=f"vaswani/{i}") for i, t in docs.items()]
    out: dict = {"docs": len(docs), "queries": len(queries), "embedder": emb.name, "passes": args.passes, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with TextIndex.open(Path(tmp) / "one", emb, chunk_tokens=0) as one:
            one.add(batch)
        out["embed_and_index_seconds"] = round(time.perf_counter() - t0, 1)
        for s in counts:
            with ShardedTextIndex.open(Path(tmp) / f"s{s}", emb, shards=s, chunk_tokens=0) as kb:
                kb.add(batch)
        with TextIndex.open(Path(tmp) / "one", emb, read_only=True) as one:
            base, times = _run(one, queries, args.passes)
        out["rows"].append(_row("unsharded", base, times, base, qrels))
        for s in counts:
            with ShardedTextIndex.open(Path(tmp) / f"s{s}", emb, read_only=True) as kb:
                ranked, times = _run(kb, queries, args.passes)
                own, _ = _run(kb, queries, 1, bm25_stats="shard")
                with TextIndex.open(Path(tmp) / "one", emb, read_only=True) as one:
                    same = {m: _same_scores(one, kb, queries, m) for m in ("dense", "bm25")}
            out["rows"].append({**_row(f"S={s} in-process", ranked, times, base, qrels, own), "same_scores": same})
        connect("local", num_cpus=2)
        try:
            for s in counts:
                t0 = time.perf_counter()
                with ShardedTextIndex.open(Path(tmp) / f"s{s}", emb, read_only=True, ray="auto") as kb:
                    started = round(time.perf_counter() - t0, 1)
                    ranked, times = _run(kb, queries, args.passes)
                out["rows"].append({**_row(f"S={s} Ray actors", ranked, times, base, qrels), "start_s": started})
        finally:
            disconnect()
    args.out.write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print(out, args.out)
    return out


def _print(out: dict, path: Path) -> None:
    print(
        f"Vaswani: {out['docs']} docs, {out['queries']} queries, {out['embedder']}, hybrid top-10, "
        f"{out['passes']} timed passes (embedded and indexed in {out['embed_and_index_seconds']}s)"
    )
    print(
        f"{'index':20s} {'vs unsharded':>12s} {'(shard BM25)':>12s} {'recall@10':>9s} {'nDCG@10':>8s} "
        f"{'p50 ms':>8s} {'p95 ms':>8s}"
    )
    notes: list[str] = []
    for r in out["rows"]:
        own = r.get("overlap@10_shard_bm25")
        if "same_scores" in r:
            notes.append(
                f"{r['index']}: queries with the unsharded top-10 scores: dense {r['same_scores']['dense']:.0%}, "
                f"BM25 {r['same_scores']['bm25']:.0%}"
            )
        print(
            f"{r['index']:20s} {r['overlap@10']:12.4f} {'' if own is None else f'{own:.4f}':>12s} "
            f"{r['recall@10']:9.4f} {r['ndcg@10']:8.4f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f}"
        )
    print("\n".join(notes))
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
