"""Retrieval at scale: clustered synthetic 384-d vectors (1M by default).

Prints, for each index type the store can choose: build time (including the build-time
calibration of nprobe / efSearch to recall@10 >= 0.97 on stored vectors), the knob it chose,
recall@10 of held-out queries against exact search, queries/s on one core, RSS; then `TextIndex.search`
p50 end to end (MiniLM query embedding + the auto-chosen ANN index + SQLite) over an index holding the
same number of chunks. Exact (flat) search is the baseline, measured in the same run.

    python -m bench.ann_scale [--n 1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Synthetic:
    """Document vectors from the synthetic set (in insertion order); queries embedded by MiniLM."""

    name = "bench-synthetic-384"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors, self.pos, self._real = vectors, 0, None

    @property
    def dim(self) -> int:
        return 384

    def embed_documents(self, texts):
        out = self.vectors[self.pos : self.pos + len(texts)]
        self.pos += len(texts)
        return out

    def embed_query(self, text):
        from indexes.embedders import get_embedder

        self._real = self._real or get_embedder("all-MiniLM-L6-v2")
        return self._real.embed_query(text)

    def count_tokens(self, text):
        return len(text.split())


def zipf_texts(n: int, seed: int = 11, words: int = 40) -> tuple[list[str], list[str]]:
    """Chunk texts and queries over a 30k-word Zipfian vocabulary, so BM25's posting lists have
    the lengths real text gives them (a shared phrase in every chunk would make hybrid search
    scan them all). Queries take 3 content words (ranks past the 100 most frequent)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, size=rng.integers(4, 9))) for _ in range(30_000)])
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.07
    p /= p.sum()
    texts = []
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        draws = vocab[rng.choice(len(vocab), size=(m, words), p=p)]
        texts.extend(" ".join(row) for row in draws)
    q = p[100:] / p[100:].sum()
    queries = [" ".join(vocab[100 + rng.choice(len(q), size=3, p=q)]) for _ in range(300)]
    return texts, queries


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--kinds", default="ivf,hnsw,ivfpq", help="ANN index types to measure against exact")
    ap.add_argument("--skip-textindex", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import faiss

    from indexes.store import IndexParams, VectorTable, connect_sqlite
    from indexes.synthetic import clustered_vectors

    faiss.omp_set_num_threads(2)
    data = clustered_vectors(args.n + args.queries, 384, n_clusters=max(100, args.n // 1000), seed=7)
    base, queries = data[: args.n], data[args.n :]
    out: dict = {"n": args.n, "dim": 384, "queries": args.queries}
    print(f"{args.n} clustered vectors, 384-d, {args.queries} queries; RSS {rss_mb():.0f} MB", flush=True)

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(384)
    flat.add(base)
    faiss.omp_set_num_threads(1)
    flat.search(queries[:50], 10)  # warm BLAS up, as every timed index gets its first call untimed too
    t1 = time.perf_counter()
    _, truth = flat.search(queries, 10)
    flat_qps = len(queries) / (time.perf_counter() - t1)
    out["flat"] = {"build_s": round(t1 - t0, 1), "qps_per_core": round(flat_qps, 1), "recall@10": 1.0}
    print(f"  baseline exact (flat): {flat_qps:8.1f} q/s/core", flush=True)
    del flat

    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            conn = connect_sqlite(Path(tmp) / f"{kind}.sqlite")
            store = VectorTable(Path(tmp), conn, 384, name=f"v_{kind}", params=IndexParams(index_type=kind))
            conn.execute("BEGIN")
            store.write(np.arange(args.n), base)
            store.bump_generation()
            conn.execute("COMMIT")
            faiss.omp_set_num_threads(2)
            t0 = time.perf_counter()
            store.rebuild()
            build = time.perf_counter() - t0
            faiss.omp_set_num_threads(1)
            store.search(queries[:50], 10)
            t1 = time.perf_counter()
            _, found = store.search(queries, 10)
            qps = len(queries) / (time.perf_counter() - t1)
            recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
            cal = store.calibration or {}
            knob = ", ".join(f"{k} {cal[k]}" for k in ("nlist", "nprobe", "efSearch") if k in cal)
            out[kind] = {
                "build_s": round(build, 1),
                "qps_per_core": round(qps, 1),
                "recall@10": round(recall, 4),
                "rss_mb": round(rss_mb()),
                "calibration": cal,
            }
            print(
                f"  {kind:6s} build {build:7.1f}s  [{knob}; calibration recall {cal.get('recall@10')}]  "
                f"recall@10 {recall:.4f}  {qps:8.1f} q/s/core  ({qps / flat_qps:.0f}x exact)  RSS {rss_mb():.0f} MB",
                flush=True,
            )
            conn.close()

        if not args.skip_textindex:
            from indexes.text import Document, TextIndex

            faiss.omp_set_num_threads(2)
            emb = _Synthetic(base)
            texts, queries_text = zipf_texts(args.n)
            t0 = time.perf_counter()
            with TextIndex.open(Path(tmp) / "kb", emb, chunk_tokens=0) as kb:
                step = 50_000
                for s in range(0, args.n, step):
                    kb.add([Document(id=f"d{i}", text=texts[i]) for i in range(s, min(args.n, s + step))])
                kb.save()
                build = time.perf_counter() - t0
                faiss.omp_set_num_threads(1)
                kb.search("warm up the embedder", k=10, mode="dense")
                lat = []
                for q in queries_text[:200]:
                    t1 = time.perf_counter()
                    kb.search(q, k=10, mode="dense")
                    lat.append(time.perf_counter() - t1)
                lat_h = []
                for q in queries_text[200:]:
                    t1 = time.perf_counter()
                    kb.search(q, k=10, mode="hybrid")
                    lat_h.append(time.perf_counter() - t1)
                out["textindex"] = {
                    "type": kb.store.index_type,
                    "build_s": round(build, 1),
                    "search_p50_ms": round(1000 * float(np.median(lat)), 2),
                    "search_p99_ms": round(1000 * float(np.percentile(lat, 99)), 2),
                    "hybrid_p50_ms": round(1000 * float(np.median(lat_h)), 2),
                    "rss_mb": round(rss_mb()),
                }
                out["textindex"]["calibration"] = kb.store.calibration
                print(
                    f"  TextIndex.search at {args.n} chunks ({kb.store.index_type}, auto-chosen), "
                    "incl. MiniLM query embedding: "
                    f"p50 {out['textindex']['search_p50_ms']} ms, p99 {out['textindex']['search_p99_ms']} ms; "
                    f"hybrid p50 {out['textindex']['hybrid_p50_ms']} ms (target p50 <= 15 ms); built in {build:.0f}s",
                    flush=True,
                )
    if args.json:
        print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
