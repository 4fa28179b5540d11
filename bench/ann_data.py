"""IVF on data whose clusters do not line up with its lists (`ann_scale`'s data is the best case:
n/1000 clusters and sqrt(n) = 1,000 lists at 1M, so nprobe 1 suffices there).

Three data sets of 384-d unit vectors, n each (1M by default), built through `VectorTable.rebuild`
as the store builds them (IVF, calibrated to recall@10 >= 0.97 on 400 held-out stored vectors):
  aligned   `ann_scale`'s clustered data (n/1000 equal clusters, spread 0.35): the baseline row;
  mixture   a Gaussian mixture of 300 clusters of Zipf-distributed sizes, each with its own spread
            (log-uniform 0.3..1.2): fewer, uneven and wider clusters than the index has lists;
  vaswani   MiniLM embeddings of Vaswani's 11,429 documents and one 30%-word-dropout variant of each,
            then noisy copies of those 22,858 vectors (Gaussian noise of norm 0.5, renormalised) up to n;
            queries are the 93 real Vaswani queries embedded by MiniLM.
For each: the index type `auto` keeps (IVF, or HNSW when IVF must scan more than 2% of the lists),
the calibrated nprobe, recall@10 of held-out queries against exact search, queries/s on one core
(exact search measured in the same run as the baseline), build time. With `--ray`, the IVF build
of the last data set is repeated on an in-process Ray cluster with 2 workers (same index, timed).

    python -m bench ann_data [--n 1000000] [--datasets aligned,mixture,vaswani] [--ray] [--hnsw]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.ann_scale import rss_mb
from bench.datasets import default_data_dir, load_vaswani

MIX_CLUSTERS, MIX_SPREAD, NOISE_NORM, DROPOUT = 300, (0.3, 1.2), 0.5, 0.3


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def mixture(n: int, dim: int = 384, seed: int = 13) -> np.ndarray:
    """Unit vectors from MIX_CLUSTERS Gaussians with Zipf sizes and log-uniform spreads."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((MIX_CLUSTERS, dim)))
    spread = np.exp(rng.uniform(*np.log(MIX_SPREAD), MIX_CLUSTERS)).astype(np.float32)
    weight = 1.0 / np.arange(1, MIX_CLUSTERS + 1)
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        which = rng.choice(MIX_CLUSTERS, size=m, p=weight / weight.sum())
        noise = rng.standard_normal((m, dim)).astype(np.float32) * (spread[which] / np.sqrt(dim))[:, None]
        out[s : s + m] = _unit(centres[which] + noise)
    return out


def vaswani_vectors(data: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(document + dropout-variant embeddings, query embeddings) by MiniLM, cached as .npy."""
    cache.mkdir(parents=True, exist_ok=True)
    docs_f, queries_f = cache / "vaswani-docs-minilm.npy", cache / "vaswani-queries-minilm.npy"
    if docs_f.exists() and queries_f.exists():
        return np.load(docs_f, allow_pickle=False), np.load(queries_f, allow_pickle=False)
    from indexes.embedders import get_embedder

    docs, queries, _ = load_vaswani(data)
    texts = list(docs.values())
    rng = np.random.default_rng(17)
    variants = []
    for t in texts:  # a paraphrase stand-in: the same words, 30% dropped
        words = t.split()
        keep = [w for w in words if rng.random() > DROPOUT] or words[:1]
        variants.append(" ".join(keep))
    emb = get_embedder("all-MiniLM-L6-v2")
    t0 = time.perf_counter()
    vecs = emb.embed_documents(texts + variants)
    qvecs = emb.embed_documents(list(queries.values()))
    print(f"  embedded {len(vecs)} Vaswani texts + {len(qvecs)} queries in {time.perf_counter() - t0:.0f}s", flush=True)
    np.save(docs_f, vecs, allow_pickle=False)
    np.save(queries_f, qvecs, allow_pickle=False)
    return vecs, qvecs


def noisy_copies(seeds: np.ndarray, n: int, seed: int = 19) -> np.ndarray:
    """The seed vectors, then copies of random seeds plus Gaussian noise of norm ~NOISE_NORM, up to n."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, seeds.shape[1]), dtype=np.float32)
    out[: min(n, len(seeds))] = seeds[:n]
    for s in range(len(seeds), n, 100_000):
        m = min(100_000, n - s)
        noise = rng.standard_normal((m, seeds.shape[1])).astype(np.float32) * (NOISE_NORM / np.sqrt(seeds.shape[1]))
        out[s : s + m] = _unit(seeds[rng.integers(0, len(seeds), m)] + noise)
    return out[rng.permutation(n)]


def dataset(name: str, n: int, queries: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    if name == "aligned":
        from indexes.synthetic import clustered_vectors

        data = clustered_vectors(n + queries, 384, n_clusters=max(100, n // 1000), seed=7)
        return data[:n], data[n:], f"{max(100, n // 1000)} equal clusters, spread 0.35 (ann_scale's data)"
    if name == "mixture":
        data = mixture(n + queries)
        return data[:n], data[n:], f"{MIX_CLUSTERS} clusters, Zipf sizes, spread log-uniform {MIX_SPREAD}"
    seeds, qvecs = vaswani_vectors(Path(args.data), Path(args.cache))
    return (
        noisy_copies(seeds, n),
        qvecs,
        f"{len(seeds)} MiniLM vectors (Vaswani docs + 30%-dropout variants), noisy copies (noise norm {NOISE_NORM}); "
        f"{len(qvecs)} real queries",
    )


def _search(store, queries: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(recall@10 against `truth`, queries/s on one core)."""
    import faiss

    faiss.omp_set_num_threads(1)
    store.search(queries[:20], 10)
    reps = max(1, 1000 // len(queries))  # time at least ~1,000 queries
    t0 = time.perf_counter()
    for _ in range(reps):
        _, found = store.search(queries, 10)
    qps = reps * len(queries) / (time.perf_counter() - t0)
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
    return recall, qps


def run_one(name: str, args: argparse.Namespace, tmp: Path, out: dict) -> tuple:
    import faiss

    from indexes.store import IndexParams, VectorTable, connect_sqlite

    base, queries, what = dataset(name, args.n, args.queries, args)
    faiss.omp_set_num_threads(2)
    flat = faiss.IndexFlatIP(384)
    flat.add(base)
    faiss.omp_set_num_threads(1)
    flat.search(queries[:20], 10)
    t0 = time.perf_counter()
    _, truth = flat.search(queries, 10)
    flat_qps = len(queries) / (time.perf_counter() - t0)
    del flat
    conn = connect_sqlite(tmp / f"{name}.sqlite")
    store = VectorTable(tmp, conn, 384, name=f"v_{name}", params=IndexParams(index_type="ivf"))
    conn.execute("BEGIN")
    store.write(np.arange(args.n), base)
    store.bump_generation()
    conn.execute("COMMIT")
    del base
    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    store.rebuild()
    build = time.perf_counter() - t0
    cal = store.calibration
    recall, qps = _search(store, queries, truth)
    auto = "ivf" if cal["recall@10"] >= 0.97 and cal["nprobe"] / cal["nlist"] <= store.params.ivf_max_scan else "hnsw"
    row = {"data": what, "auto_type": auto, "flat_qps_per_core": round(flat_qps, 1)}
    row["ivf"] = {"nlist": cal["nlist"], "nprobe": cal["nprobe"], "calibration_recall@10": cal["recall@10"]}
    row["ivf"].update({"recall@10": round(recall, 4), "qps_per_core": round(qps, 1), "build_s": round(build, 1)})
    print(f"  {name}: {what}", flush=True)
    print(f"    exact (flat) baseline: {flat_qps:8.1f} q/s/core", flush=True)
    print(
        f"    ivf   nprobe {cal['nprobe']:3d} of {cal['nlist']} lists (calibration recall {cal['recall@10']})  "
        f"recall@10 {recall:.4f}  {qps:8.1f} q/s/core  build {build:6.1f}s  RSS {rss_mb():.0f} MB -> auto keeps {auto}",
        flush=True,
    )
    if args.hnsw and auto == "hnsw":
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        store.rebuild("hnsw")
        hbuild = time.perf_counter() - t0
        hcal = store.calibration
        hrecall, hqps = _search(store, queries, truth)
        row["hnsw"] = {"efSearch": hcal["efSearch"], "calibration_recall@10": hcal["recall@10"]}
        row["hnsw"].update({"recall@10": round(hrecall, 4), "qps_per_core": round(hqps, 1)})
        row["hnsw"]["build_s"] = round(hbuild, 1)
        print(
            f"    hnsw  efSearch {hcal['efSearch']} (calibration recall {hcal['recall@10']})  recall@10 {hrecall:.4f}  "
            f"{hqps:8.1f} q/s/core  build {hbuild:6.1f}s",
            flush=True,
        )
    out[name] = row
    return store, build


def ray_build(store, single_s: float, out: dict) -> None:
    """The same IVF build with the vectors added on an in-process Ray cluster of 2 workers."""
    import faiss

    from indexes.distributed.ann_build import build_on_ray
    from polymodal.cluster import connect, disconnect

    connect("local", num_cpus=2)
    try:
        single_cal = {k: store.calibration[k] for k in ("nlist", "nprobe", "recall@10")}
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        build_on_ray(store, "ivf")
        ray_s = time.perf_counter() - t0
    finally:
        disconnect()
    same = all(store.calibration[k] == v for k, v in single_cal.items())
    out["ray_build"] = {"single_process_s": round(single_s, 1), "ray_2_workers_s": round(ray_s, 1), "same": same}
    print(
        f"  IVF build of {store.count()} vectors: single process {single_s:.1f}s, Ray (in-process, 2 workers) "
        f"{ray_s:.1f}s; same calibration: {same}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000, help="held-out queries (synthetic data sets)")
    ap.add_argument("--datasets", default="aligned,mixture,vaswani")
    ap.add_argument("--data", default=str(default_data_dir()), help="shared data folder (holds vaswani/)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "polymodal" / "bench"), help="embeddings cache")
    ap.add_argument("--ray", action="store_true", help="time the last IVF build again on Ray (2 workers)")
    ap.add_argument("--hnsw", action="store_true", help="also build HNSW where auto would switch to it")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out: dict = {"n": args.n, "dim": 384}
    print(f"n = {args.n} vectors of 384-d each; IVF calibrated to recall@10 >= 0.97; RSS {rss_mb():.0f} MB", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = single = None
        for name in args.datasets.split(","):
            if store is not None:
                store.conn.close()
            store, single = run_one(name, args, Path(tmp), out)
        if args.ray and store is not None:
            ray_build(store, single, out)
    if args.json:
        print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
