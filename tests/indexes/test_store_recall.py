"""ANN index types checked against exact search on seeded clustered data (recall@k, not time)."""

import numpy as np
import pytest

from indexes.store import IndexParams, VectorStore, connect_sqlite
from indexes.synthetic import clustered_vectors, exact_topk


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.mark.parametrize("kind,minimum", [("flat", 1.0), ("hnsw", 0.95), ("ivfpq", 0.9)])
def test_recall_at_10_against_exact(tmp_path, kind, minimum):
    base = clustered_vectors(20_000, 64, n_clusters=200, seed=1)
    queries = clustered_vectors(20_200, 64, n_clusters=200, seed=1)[20_000:]
    conn = connect_sqlite(tmp_path / "v.sqlite")
    store = VectorStore(tmp_path, conn, 64, params=IndexParams(index_type=kind))
    ids = np.arange(1, len(base) + 1)
    conn.execute("BEGIN")
    store.write(ids, base)
    store.bump_generation()
    conn.execute("COMMIT")
    store.rebuild()
    assert store.index_type == kind
    _, found = store.search(queries, 10)
    truth = exact_topk(base, queries, 10) + 1
    assert _recall(found, truth) >= minimum
    # the saved file round-trips to the same answers
    store.save()
    again = VectorStore(tmp_path, conn, 64, params=IndexParams(index_type=kind))
    again.load()
    _, found2 = again.search(queries, 10)
    assert _recall(found2, found) >= 0.99


def test_filtered_search_only_returns_allowed_ids(tmp_path):
    base = clustered_vectors(5_000, 32, n_clusters=50, seed=2)
    for kind in ("flat", "hnsw"):
        conn = connect_sqlite(tmp_path / f"{kind}.sqlite")
        store = VectorStore(tmp_path, conn, 32, name=f"v_{kind}", params=IndexParams(index_type=kind))
        conn.execute("BEGIN"); store.write(np.arange(len(base)), base); store.bump_generation(); conn.execute("COMMIT")
        store.rebuild()
        allowed = np.arange(0, 5_000, 7)
        _, found = store.search(base[:5], 10, allowed=allowed)
        assert set(found[found >= 0].tolist()) <= set(allowed.tolist())
        assert (found >= 0).sum() == 50
