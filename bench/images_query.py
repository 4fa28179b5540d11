"""Text->image query latency at 100k images: p50/p95 of `ImageIndex.search(text)` end to end (query
embedding + FAISS + SQLite rows) with the offline ConSE encoder, and its parts, against exact
numpy search over the same vectors (baseline, same run).

The ten offline photos are indexed for real; the other rows are synthetic ConSE-like vectors
(Dirichlet mixtures of ten random ImageNet class embeddings, as a real photo's vector is), written
straight into the index's store, joint space only.

    python -m bench.images_query [--n 100000] [--queries 60]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

QUERIES = [
    "a cat sleeping",
    "一杯咖啡",
    "a red sports car",
    "山上的日落",
    "a dog on the beach",
    "一朵花",
    "people at a wedding",
    "雪中的房子",
    "a bowl of soup",
    "火车站",
    "a child with a kite",
    "城市夜景",
    "an old church",
    "一只鸟",
    "boats in a harbour",
    "摩托车",
    "a plate of pasta",
    "森林小路",
    "a rocket launch",
    "中国古建筑",
]


def synthetic_conse_vectors(classes: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, classes.shape[1]), np.float32)
    for s in range(0, n, 10_000):
        m = min(10_000, n - s)
        top = rng.integers(0, len(classes), size=(m, 10))
        w = rng.dirichlet(np.full(10, 0.3), size=m).astype(np.float32)
        v = np.einsum("nk,nkd->nd", w, classes[top])
        out[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def add_synthetic_rows(idx, vecs: np.ndarray) -> None:
    """Bench-only bulk load through the index's own store (one transaction, like a real batch)."""
    c = idx._conn
    now = time.time()
    with idx._write_lock():
        c.execute("BEGIN IMMEDIATE")
        ids = []
        for i in range(len(vecs)):
            cur = c.execute(
                "INSERT INTO images(path, folder, sha256, size, mtime_ns, width, height, format, thumbnail, "
                "added_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (f"/synthetic/{i:06d}.jpg", "/synthetic", f"{i:064x}", 0, 0, 0, 0, "JPEG", "", now),
            )
            ids.append(int(cur.lastrowid))
        idx.joint.write(ids, vecs)
        idx.joint.bump_generation()
        c.execute("COMMIT")
        idx.joint.add(ids, vecs)
        idx._seen = idx._generations()
    idx.save()


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, q)), 2)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from PIL import Image

    from bench.images_index import offline_photos
    from indexes.image_encoders.conse import ConSEEncoder
    from indexes.images import ImageIndex

    enc = ConSEEncoder()
    queries = [QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}") for i in range(args.queries)]
    out: dict = {"n": args.n, "queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "photos").mkdir()
        for name, arr in offline_photos().items():
            Image.fromarray(arr).save(tmp / "photos" / f"{name}.jpg")
        t0 = time.perf_counter()
        with ImageIndex.open(tmp / "idx", enc) as idx:
            idx.index_folder(tmp / "photos")
            add_synthetic_rows(idx, synthetic_conse_vectors(enc.class_embeddings(), args.n - idx.count()))
        out["build_s"] = round(time.perf_counter() - t0, 1)
        with ImageIndex.open(tmp / "idx", read_only=True) as idx:
            out["faiss_index"] = idx.joint.index_type
            idx.search("warm up", k=10)
            total, embed, search, hits = [], [], [], []
            for q in queries:
                t0 = time.perf_counter()
                hits.append(idx.search(q, k=10))
                total.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                v = enc.embed_texts([q])[0]
                embed.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                idx.joint.search(v, 10)
                search.append(time.perf_counter() - t0)
            # exact baseline over the same vectors, and recall@10 of the FAISS index against it
            ids, mats = [], []
            for part_ids, part in idx.joint._iter_vectors():
                ids.append(part_ids)
                mats.append(part)
            ids_all, mat = np.concatenate(ids), np.concatenate(mats)
            exact, recall = [], []
            for q in queries:
                v = enc.embed_texts([q])[0]
                t0 = time.perf_counter()
                top = np.argpartition(-(mat @ v), 10)[:10]
                exact.append(time.perf_counter() - t0)
                _, got = idx.joint.search(v, 10)
                recall.append(len(set(ids_all[top].tolist()) & set(got[0].tolist())) / 10)
    out.update(
        {
            "p50_ms": pct(total, 50),
            "p95_ms": pct(total, 95),
            "embed_p50_ms": pct(embed, 50),
            "faiss_p50_ms": pct(search, 50),
            "exact_numpy_p50_ms": pct(exact, 50),
            "recall_at_10_vs_exact": round(float(np.mean(recall)), 3),
        }
    )
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"text->image search at {args.n:,} images ({out['faiss_index']}), {len(queries)} EN/ZH queries, k=10:")
        print(
            f"  end to end p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms "
            f"(query embedding p50 {out['embed_p50_ms']} ms, FAISS p50 {out['faiss_p50_ms']} ms)"
        )
        print(
            f"  baseline: exact numpy search p50 {out['exact_numpy_p50_ms']} ms; "
            f"FAISS recall@10 vs exact {out['recall_at_10_vs_exact']}"
        )
    return out


if __name__ == "__main__":
    main()
