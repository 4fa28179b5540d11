"""Ingestion speed: chunks/s of polymodal on the seed articles + the Vaswani corpus, against
(a) raw SentenceTransformer.encode on the same chunk texts and (b) LangChain's
FAISS.from_documents with HuggingFaceEmbeddings on the same model. All three in this run.

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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--limit", type=int, default=0, help="use only the first N Vaswani documents (0: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from indexes.embedders import get_embedder
    from indexes.ingest import ingest_paths
    from indexes.text import Document, TextIndex
    from polymodal.config import Config

    model = "all-MiniLM-L6-v2"
    emb = get_embedder(model)
    emb.embed_documents(["warm up"])  # load the model outside every timing
    docs, _, _ = load_vaswani(args.data)
    items = list(docs.items())[: args.limit or None]
    out: dict = {"model": model}
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "kb"
        config = Config()
        config.embedder.model = model
        t0 = time.perf_counter()
        report = ingest_paths(kb, [args.data / "seed-articles"], config=config, show_progress=False)
        with TextIndex.open(kb) as index:
            index.add([Document(id=f"vaswani-{i}", text=t, source=f"vaswani/{i}") for i, t in items])
            ours = time.perf_counter() - t0
            chunks = [r[0] for r in index._conn.execute("SELECT text FROM chunks ORDER BY id")]
    n = len(chunks)
    out.update({"chunks": n, "seed_files": report.count("added"), "polymodal_s": round(ours, 2),
                "polymodal_chunks_per_s": round(n / ours, 1)})

    st_model = emb.model  # the same SentenceTransformer object
    t0 = time.perf_counter()
    for i in range(0, n, 256):
        st_model.encode(chunks[i : i + 256], batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    raw = time.perf_counter() - t0
    out.update({"raw_encode_s": round(raw, 2), "raw_chunks_per_s": round(n / raw, 1),
                "overhead_over_raw_pct": round(100 * (ours - raw) / raw, 1)})

    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LCDocument
    from langchain_huggingface import HuggingFaceEmbeddings

    from indexes.embedders import _packaged_minilm

    hf = HuggingFaceEmbeddings(model_name=_packaged_minilm(), model_kwargs={"device": "cpu"},
                               encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
    hf.embed_documents(["warm up"])
    t0 = time.perf_counter()
    FAISS.from_documents([LCDocument(page_content=c) for c in chunks], hf)
    lc = time.perf_counter() - t0
    out.update({"langchain_s": round(lc, 2), "langchain_chunks_per_s": round(n / lc, 1),
                "speedup_vs_langchain": round(lc / ours, 2)})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{n} chunks ({out['seed_files']} seed articles + {len(items)} Vaswani docs), model {model}, 2 cores")
        print(f"  polymodal ingest (chunk+embed+SQLite+FTS5+FAISS): {ours:7.1f}s  {n / ours:7.1f} chunks/s")
        print(f"  baseline (a) raw SentenceTransformer.encode:     {raw:7.1f}s  {n / raw:7.1f} chunks/s"
              f"   -> overhead {out['overhead_over_raw_pct']}% (target <= 15%)")
        print(f"  baseline (b) LangChain FAISS.from_documents:     {lc:7.1f}s  {n / lc:7.1f} chunks/s"
              f"   -> polymodal is {out['speedup_vs_langchain']}x (target >= 2x)")
    return out


if __name__ == "__main__":
    main()
