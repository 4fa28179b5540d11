"""Seeded clustered synthetic vectors for ANN tests and benchmarks.

Uniform random vectors are meaningless for ANN recall (every point is about equally far), so this
draws points around Gaussian cluster centres, like real embeddings, L2-normalised.
"""

from __future__ import annotations

import numpy as np

__all__ = ["clustered_vectors", "exact_topk"]


def clustered_vectors(n: int, dim: int, n_clusters: int = 1000, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        which = rng.integers(0, n_clusters, m)
        x = centres[which] + spread * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top-k by inner product (faiss flat search)."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return index.search(queries, k)[1]
