"""Ingestion on Ray against one process, all in this run, on the Vaswani abstracts (one file each)
embedded by the offline MiniLM (ONNX):

- one process with 2 threads and with 1 thread (read, chunk, embed, commit timed apart, the same
  functions `ingest_paths` runs);
- Ray in-process (2 CPUs) with 1 and 2 embedding actors, and a real two-node cluster (`ray start`
  twice, 1 CPU each) with 2 actors: read/chunk and embed seconds summed over workers, commit on
  the driver, and the Ray overhead (wall time the stages do not explain);
- the committer's ceiling: chunks/s `write_prepared` commits with precomputed vectors;
- scaling efficiency, and an Amdahl projection to 8 and 32 nodes from the serial share (the larger of
  commit + overhead measured, and the share the 1 -> 2 actor speedup implies), capped by the
  committer: a projection, not a measurement.

    python -m bench distributed_ingest [--data ../shared/data] [--docs 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.datasets import default_data_dir, load_vaswani  # noqa: E402

MODEL = "all-MiniLM-L6-v2"


def _write_corpus(data: Path, n: int, folder: Path) -> int:
    docs, _, _ = load_vaswani(data)
    for i, (doc_id, text) in enumerate(list(docs.items())[:n]):
        (folder / f"vaswani-{doc_id}.txt").write_text(text, encoding="utf-8")
    return min(n, len(docs))


def _config():
    from polymodal.config import Config

    cfg = Config()
    cfg.embedder.model = MODEL
    return cfg


def one_process(corpus: Path, kb: Path, threads: int) -> dict:
    """What ingest_paths does, with each stage timed."""
    from indexes.embedders import get_embedder
    from indexes.ingest import discover, open_for_ingest, read_options
    from indexes.prepare import Preparer
    from indexes.readers import read_file
    from indexes.text import Document

    cfg = _config()
    emb = get_embedder(MODEL, threads=threads)
    emb.embed_documents(["warm up"])  # model load outside the timing, as the Ray actors' is not
    files, _ = discover([corpus])
    t0 = time.perf_counter()
    docs = []
    for f in files:
        got = read_file(f, read_options(cfg))
        docs.append(Document(id=str(f), text=got.text, source=str(f), type="txt", marks=got.marks))
    index, _, _ = open_for_ingest(kb, cfg, docs[0].text, True, False)
    prep = Preparer(index.write_spec(), emb)
    t1 = time.perf_counter()
    items = [prep.chunk(d) for d in docs]
    t2 = time.perf_counter()
    prep.embed(items)
    t3 = time.perf_counter()
    for s in range(0, len(items), 256):
        index.write_prepared(items[s : s + 256])
    index.close()
    t4 = time.perf_counter()
    chunks = sum(len(it.spans) for it in items)
    return {
        "chunks": chunks,
        "wall_s": t4 - t0,
        "read_chunk_s": (t1 - t0) + (t2 - t1),
        "embed_s": t3 - t2,
        "commit_s": t4 - t3,
        "overhead_s": 0.0,
        "items": items,
    }


def committer_ceiling(items: list, kb: Path) -> float:
    """Chunks/s the single writer commits when the vectors are already computed."""
    from indexes.text import TextIndex

    with TextIndex.open(kb, MODEL, embedder_backend="onnx") as index:
        t0 = time.perf_counter()
        for s in range(0, len(items), 256):
            index.write_prepared(items[s : s + 256])
        seconds = time.perf_counter() - t0
    return sum(len(it.spans) for it in items) / seconds


def on_ray(corpus: Path, kb: Path, address: str, actors: int) -> dict:
    from indexes.distributed.ingest import ingest_on_ray

    report = ingest_on_ray(kb, [corpus], address=address, config=_config(), actors=actors, show_progress=False)
    st = dict(report.stats)
    workers = max(1, actors)
    explained = st["read_chunk_s"] / workers + st["embed_s"] / workers + st["commit_s"]
    st["overhead_s"] = max(0.0, st["wall_s"] - explained)
    return st


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench distributed_ingest")
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--docs", type=int, default=3000, help="Vaswani abstracts to ingest (of 11,429)")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    from polymodal.cluster import LocalCluster, connect, disconnect

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="pm-dist-") as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus"
        corpus.mkdir()
        n = _write_corpus(args.data, args.docs, corpus)
        print(f"corpus: {n} Vaswani abstracts, one .txt file each; embedder {MODEL} (ONNX)", flush=True)
        for threads in (2, 1):
            r = one_process(corpus, tmp / f"one-{threads}", threads)
            items = r.pop("items")
            rows[f"one process, {threads} thread{'s' if threads > 1 else ''}"] = r
            print(f"  one process, {threads} threads: {r['chunks'] / r['wall_s']:.0f} chunks/s", flush=True)
        ceiling = committer_ceiling(items, tmp / "ceiling")

        connect("local", num_cpus=2)
        for actors in (1, 2):
            rows[f"Ray in-process, {actors} actor{'s' if actors > 1 else ''}"] = on_ray(
                corpus, tmp / f"ray-{actors}", "auto", actors
            )
            print(f"  ray {actors} actors done", flush=True)
        disconnect()
        with LocalCluster(nodes=2, cpus_per_node=1) as cluster:
            rows["Ray two-node (1 CPU each), 2 actors"] = on_ray(corpus, tmp / "ray-2node", cluster.address, 2)

    print(f"\nIngestion of {n} files, {MODEL} ONNX, chunks/s (higher is better); stage seconds")
    print(f"{'run':40} {'chunks/s':>9} {'wall':>7} {'read+chunk':>11} {'embed':>7} {'commit':>7} {'ray overhead':>13}")
    for name, r in rows.items():
        print(
            f"{name:40} {r['chunks'] / r['wall_s']:9.0f} {r['wall_s']:7.1f} {r['read_chunk_s']:11.1f} "
            f"{r['embed_s']:7.1f} {r['commit_s']:7.1f} {r['overhead_s']:13.1f}"
        )
    print("(read+chunk and embed on Ray are summed over workers; overhead = wall - stages/workers - commit)")
    print(f"committer ceiling (write_prepared, precomputed vectors): {ceiling:,.0f} chunks/s")

    base = rows["one process, 1 thread"]
    one = rows["Ray in-process, 1 actor"]
    two = rows["Ray in-process, 2 actors"]
    rate = lambda r: r["chunks"] / r["wall_s"]  # noqa: E731
    print(
        f"scaling: 2 actors / 1 actor = {rate(two) / rate(one):.2f}x (efficiency {rate(two) / rate(one) / 2:.0%}); "
        f"2 actors / one process 1 thread = {rate(two) / rate(base):.2f}x; "
        f"two-node / one process 2 threads = "
        f"{rate(rows['Ray two-node (1 CPU each), 2 actors']) / rate(rows['one process, 2 threads']):.2f}x"
    )
    measured = (one["commit_s"] + one["overhead_s"]) / one["wall_s"]
    # Karp-Flatt: the serial share the measured 1 -> 2 actor speedup implies (it also holds what the
    # two shared cores cost); Amdahl projects from the larger of the two
    s2 = rate(two) / rate(one)
    implied = max(0.0, (1 / s2 - 1 / 2) / (1 - 1 / 2))
    serial = max(measured, implied)
    print(
        f"serial share: commit + Ray overhead = {measured:.1%} of the 1-actor wall time; "
        f"implied by the 1->2 actor speedup (Karp-Flatt) = {implied:.1%}; projecting with {serial:.1%}"
    )
    projection = {}
    for nodes in (8, 32):
        speedup = 1 / (serial + (1 - serial) / nodes)
        projected = min(rate(one) * speedup, ceiling)
        projection[nodes] = projected
        print(
            f"PROJECTION (Amdahl, not measured): {nodes} nodes of 1 embedding CPU -> {speedup:.1f}x the 1-actor run, "
            f"{projected:,.0f} chunks/s (capped by the committer at {ceiling:,.0f})"
        )
    out = {"rows": rows, "committer_chunks_per_s": ceiling, "serial_share": serial, "projection": projection}
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
