"""ANN index types for a `VectorTable`: which FAISS index fits a collection, how to build it, and
how to calibrate it.

Index type by size: exact (flat) up to `flat_max`; up to `ann_max` IVF-Flat, or HNSW when IVF
would have to scan more than `ivf_max_scan` of the collection to reach the recall target; IVF-PQ
with exact re-rank from the SQLite vectors above. Calibration replaces guessed constants: stored
vectors held out of the build are searched exactly and with the new index, and the smallest
nprobe / efSearch (and IVF-PQ re-rank factor) whose recall@10 reaches `target_recall` is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from polymodal.errors import StoreCorrupt

__all__ = [
    "IndexParams",
    "TRAINED",
    "MIN_TRAIN",
    "ExactTop10",
    "new_faiss_index",
    "default_search",
    "apply_search",
    "search_parameters",
    "calibration_grid",
    "calibrate",
    "faiss_nlist",
]

TRAINED = ("ivf", "ivfpq")  # index types whose coarse quantizer is trained
MIN_TRAIN = 16 * 39  # fewer vectors than this cannot train a quantizer: flat instead
_NPROBES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
_EFS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)


@dataclass
class IndexParams:
    index_type: str = "auto"  # auto | flat | ivf | hnsw | ivfpq
    flat_max: int = 50_000  # exact search up to this many vectors
    ann_max: int = 2_000_000  # IVF-Flat or HNSW up to this many; IVF-PQ + exact re-rank above
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 0  # 0: calibrated at build time
    ivf_nprobe: int = 0  # 0: calibrated at build time
    ivf_max_scan: float = 0.02  # auto: keep IVF only if its calibrated nprobe scans at most this share
    target_recall: float = 0.97  # calibration: recall@10 against exact search on stored vectors
    calibration_queries: int = 400
    rerank_factor: int = 0  # IVF-PQ candidates per result re-ranked exactly; 0: calibrated at build time
    build_on_ray: bool = False  # IVF/IVF-PQ: add the vectors on Ray actors (indexes/distributed/ann_build.py)
    ray_slice_rows: int = 50_000  # vectors per Ray task when build_on_ray

    def choose(self, n: int) -> str:
        """The index type asked for `n` vectors."""
        if self.index_type != "auto":
            return self.index_type
        if n <= self.flat_max:
            return "flat"
        return "ivf" if n <= self.ann_max else "ivfpq"

    def buildable(self, n: int) -> str:
        """The index type that can be built for `n` vectors: a trained type needs enough to train on."""
        kind = self.choose(n)
        return "flat" if kind in TRAINED and n < MIN_TRAIN else kind

    @classmethod
    def from_config(cls, kb: Any) -> "IndexParams":
        """From a `KBConfig` (polymodal.config): the fields both share."""
        return cls(**{k: getattr(kb, k) for k in cls.__dataclass_fields__ if hasattr(kb, k)})


def faiss_nlist(index: Any) -> int:
    import faiss

    return int(faiss.extract_index_ivf(index).nlist)


def _nlist(n: int, kind: str) -> int:
    """IVF lists: ~sqrt(n) for IVF-Flat (coarse search and list scan cost the same at nprobe 1);
    more for IVF-PQ, whose list scan is cheap. Never more than n/39 (FAISS's training minimum)."""
    want = int(np.sqrt(max(n, 1))) if kind == "ivf" else int(4 * np.sqrt(max(n, 1)))
    return max(16, min(65536, want, n // 39))


def new_faiss_index(kind: str, dim: int, params: IndexParams, train: np.ndarray | None = None, n_total: int = 0) -> Any:
    """An empty inner-product FAISS index of `kind` keyed by int64 ids; trained types train on `train`."""
    import faiss

    if kind == "flat":
        base = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = params.hnsw_ef_construction
        base.hnsw.efSearch = params.hnsw_ef_search
    elif kind in TRAINED:
        if train is None or len(train) < MIN_TRAIN:
            raise StoreCorrupt("an IVF index needs a training sample; build it through rebuild()")
        nlist = _nlist(n_total or len(train), kind)
        quant = faiss.IndexFlatIP(dim)
        if kind == "ivf":
            base = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            # dim/4 sub-quantizers (96 bytes a 384-d vector, 16x smaller): dim/8 could not order
            # neighbours inside a cluster well enough for the exact re-rank to recover them.
            m = next(m for m in (dim // 4, dim // 2, dim) if m and dim % m == 0)
            base = faiss.IndexIVFPQ(quant, dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        base.train(train[: max(nlist * 39, min(len(train), 256 * nlist))])
    else:
        raise ValueError(f"unknown index type {kind!r}")
    return faiss.IndexIDMap2(base)


def default_search(kind: str, index: Any, params: IndexParams) -> dict:
    """Search knobs before calibration (or when the collection is too small to calibrate)."""
    if kind == "hnsw":
        return {"efSearch": params.hnsw_ef_search or 96}
    if kind in TRAINED:
        nlist = faiss_nlist(index)
        out = {"nprobe": min(nlist, params.ivf_nprobe or (8 if kind == "ivf" else 32)), "nlist": nlist}
        if kind == "ivfpq":
            out["rerank"] = params.rerank_factor or 10
        return out
    return {}


def apply_search(index: Any, search: dict) -> None:
    """Set the index's own nprobe / efSearch from `search` (what an unfiltered search uses)."""
    import faiss

    base = faiss.downcast_index(index.index)
    if isinstance(base, faiss.IndexHNSWFlat) and "efSearch" in search:
        base.hnsw.efSearch = int(search["efSearch"])
    elif isinstance(base, faiss.IndexIVF) and "nprobe" in search:
        base.nprobe = int(search["nprobe"])


def search_parameters(kind: str, search: dict, sel: Any) -> Any:
    """Per-call FAISS search parameters restricted to the ids `sel` selects, with the same knobs."""
    import faiss

    if kind == "hnsw":
        p = faiss.SearchParametersHNSW(sel=sel)
        p.efSearch = int(search.get("efSearch", 96))
        return p
    if kind in TRAINED:
        return faiss.SearchParametersIVF(sel=sel, nprobe=int(search.get("nprobe", 8)))
    return faiss.SearchParameters(sel=sel)


def calibration_grid(kind: str, params: IndexParams, nlist: int = 0) -> list[dict]:
    """Knob settings to try, cheapest first (explicit settings in `params` are kept as the only choice)."""
    if kind == "hnsw":
        return [{"efSearch": v} for v in ([params.hnsw_ef_search] if params.hnsw_ef_search else _EFS)]
    probes = [params.ivf_nprobe] if params.ivf_nprobe else [p for p in _NPROBES if p <= nlist]
    if kind != "ivfpq":
        return [{"nprobe": p} for p in probes]
    # PQ codes only order candidates: how many to re-rank exactly matters too
    reranks = [params.rerank_factor] if params.rerank_factor else [10, 20, 40]
    return [{"nprobe": p, "rerank": r} for p in probes for r in reranks]


def calibration_sample(
    ids: np.ndarray, params: IndexParams, vectors: Callable[[np.ndarray], dict[int, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Stored vectors (ids, vectors) used as queries to measure recall; None when too few are stored."""
    want = min(params.calibration_queries, len(ids) // 5)
    if want < 50:
        return None
    take = np.sort(np.random.default_rng(1).choice(len(ids), size=want, replace=False))
    got = vectors(ids[take])
    keep = np.array([int(i) for i in ids[take] if int(i) in got], dtype=np.int64)
    return keep, np.stack([got[int(i)] for i in keep])


class ExactTop10:
    """The exact top-10 ids of each query among vectors fed in batches (one streaming pass)."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries
        self.scores: np.ndarray | None = None
        self.ids: np.ndarray | None = None

    def feed(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if not len(ids):
            return
        scores = self.queries @ vecs.T
        cand_ids = np.broadcast_to(ids, scores.shape)
        if self.scores is not None:
            scores, cand_ids = np.hstack([self.scores, scores]), np.hstack([self.ids, cand_ids])
        if scores.shape[1] > 10:
            top = np.argpartition(-scores, 9, axis=1)[:, :10]
        else:
            top = np.arange(scores.shape[1])[None].repeat(len(scores), 0)
        self.scores, self.ids = np.take_along_axis(scores, top, 1), np.take_along_axis(cand_ids, top, 1)


def calibrate(
    grid: list[dict], search_with: Callable[[dict], np.ndarray], truth: np.ndarray, target: float
) -> tuple[dict, float]:
    """The first knob setting in `grid` whose recall@10 against `truth` reaches `target` (else the last
    one tried), with its recall. `search_with(knobs)` returns the top-10 ids of the held-out queries."""
    want = [set(t.tolist()) for t in truth]
    recall, knobs = 0.0, grid[-1]
    for knobs in grid:
        found = search_with(knobs)
        recall = float(np.mean([len(set(f.tolist()) & w) / max(1, len(w)) for f, w in zip(found, want)]))
        if recall >= target:
            break
    return knobs, recall
