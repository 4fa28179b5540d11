"""Ingestion speed: chunks/s of polymodal on the seed articles + the Vaswani corpus, against
(a) raw SentenceTransformer.encode on the same chunk texts and (b) LangChain's
FAISS.from_documents with HuggingFaceEmbeddings on the same model. All in this run.

polymodal runs once per embedder backend: torch (the overhead over (a) is the pipeline's own
cost: chunking, SQLite, FTS5, FAISS), onnx (the default: same vectors) and onnx-int8.
LangChain embeds with eager torch, so the like-for-like ratio is polymodal on torch against it
(one thing compared: the pipeline); polymodal on ONNX against it adds the runtime's gain.

    python -m bench.ingest_speed [--data ../shared/data] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.datasets import default_data_dir, load_seed_articles, load_vaswani  # noqa: E402

MODEL = "all-MiniLM-L6-v2"


def _ours(data: Path, items: list[tuple[str, str]], backend: str) -> tuple[float, list[str]]:
    from indexes.embedders import get_embedder
    from indexes.ingest import ingest_paths
    from indexes.text import Document, TextIndex
    from polymodal.config import Config

    get_embedder(MODEL, backend).embed_documents(["warm up"])  # load (and export) outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "kb"
        config = Config()
        config.embedder.model = MODEL
        config.embedder.backend = backend
        t0 = time.perf_counter()
        ingest_paths(kb, [data / "seed-articles"], config=config, show_progress=False)
        with TextIndex.open(kb, embedder_backend=backend) as index:
            index.add([Document(id=f"vaswani-{i}", text=t, source=f"vaswani/{i}") for i, t in items])
            seconds = time.perf_counter() - t0
            chunks = [r[0] for r in index._conn.execute("SELECT text FROM chunks ORDER BY id")]
    return seconds, chunks


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--limit", type=int, default=0, help="use only the first N Vaswani documents (0: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from indexes.embedders import get_embedder

    docs, _, _ = load_vaswani(args.data)
    items = list(docs.items())[: args.limit or None]
    out: dict = {"model": MODEL, "seed_articles": len(load_seed_articles(args.data)), "vaswani_docs": len(items)}
    # torch first, with its raw baseline and LangChain, before any ONNX Runtime session exists in
    # this process (its thread pool would otherwise compete with torch's).
    seconds, chunks = _ours(args.data, items, "torch")
    out["polymodal_torch"] = {"s": round(seconds, 2), "chunks_per_s": round(len(chunks) / seconds, 1)}
    n = out["chunks"] = len(chunks)

    st_model = get_embedder(MODEL, "torch").model  # the very SentenceTransformer object ours used
    t0 = time.perf_counter()
    st_model.encode(chunks, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    raw = time.perf_counter() - t0
    out["raw_encode"] = {"s": round(raw, 2), "chunks_per_s": round(n / raw, 1)}
    out["overhead_over_raw_pct"] = round(100 * (out["polymodal_torch"]["s"] - raw) / raw, 1)

    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LCDocument
    from langchain_huggingface import HuggingFaceEmbeddings

    from indexes.embedders import _packaged_minilm

    hf = HuggingFaceEmbeddings(
        model_name=_packaged_minilm(),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
    )
    hf.embed_documents(["warm up"])
    t0 = time.perf_counter()
    FAISS.from_documents([LCDocument(page_content=c) for c in chunks], hf)
    lc = time.perf_counter() - t0
    out["langchain"] = {"s": round(lc, 2), "chunks_per_s": round(n / lc, 1)}
    for backend in ("onnx", "onnx-int8"):
        seconds, _ = _ours(args.data, items, backend)
        out[f"polymodal_{backend}"] = {"s": round(seconds, 2), "chunks_per_s": round(n / seconds, 1)}
    out["speedup_vs_langchain_same_runtime"] = round(lc / out["polymodal_torch"]["s"], 2)
    out["speedup_vs_langchain"] = round(lc / out["polymodal_onnx"]["s"], 2)
    if args.json:
        print(json.dumps(out, indent=2))
        return out
    print(
        f"{n} chunks ({out['seed_articles']} seed articles + {len(items)} Vaswani docs), {MODEL}, "
        "this machine's 2 cores"
    )
    for backend in ("torch", "onnx", "onnx-int8"):
        r = out[f"polymodal_{backend}"]
        print(f"  polymodal ingest, {backend:9s} backend: {r['s']:8.1f}s  {r['chunks_per_s']:7.1f} chunks/s")
    print(
        f"  baseline (a) raw SentenceTransformer.encode: {raw:8.1f}s  {n / raw:7.1f} chunks/s   "
        f"-> torch pipeline overhead {out['overhead_over_raw_pct']}% (target <= 15%)"
    )
    print(
        f"  baseline (b) LangChain FAISS.from_documents (torch): {lc:8.1f}s  {n / lc:7.1f} chunks/s"
        f"\n    like for like, both on torch: polymodal is {out['speedup_vs_langchain_same_runtime']}x"
        f"\n    polymodal default (onnx) vs LangChain (torch): {out['speedup_vs_langchain']}x (target >= 2x; "
        "runtime and pipeline together)"
    )
    return out


if __name__ == "__main__":
    main()
