"""ANN index types checked against exact search on seeded clustered data (recall@k, not time)."""

import numpy as np
import pytest

from indexes.store import IndexParams, VectorTable, connect_sqlite
from indexes.synthetic import clustered_vectors, exact_topk


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.mark.parametrize("kind,minimum", [("flat", 1.0), ("ivf", 0.95), ("hnsw", 0.95), ("ivfpq", 0.9)])
def test_recall_at_10_against_exact(tmp_path, kind, minimum):
    base = clustered_vectors(20_000, 64, n_clusters=200, seed=1)
    queries = clustered_vectors(20_200, 64, n_clusters=200, seed=1)[20_000:]
    conn = connect_sqlite(tmp_path / "v.sqlite")
    store = VectorTable(tmp_path, conn, 64, params=IndexParams(index_type=kind))
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
    again = VectorTable(tmp_path, conn, 64, params=IndexParams(index_type=kind))
    again.load()
    _, found2 = again.search(queries, 10)
    assert _recall(found2, found) >= 0.99


def test_filtered_search_only_returns_allowed_ids(tmp_path):
    base = clustered_vectors(5_000, 32, n_clusters=50, seed=2)
    for kind in ("flat", "hnsw"):
        conn = connect_sqlite(tmp_path / f"{kind}.sqlite")
        store = VectorTable(tmp_path, conn, 32, name=f"v_{kind}", params=IndexParams(index_type=kind))
        conn.execute("BEGIN")
        store.write(np.arange(len(base)), base)
        store.bump_generation()
        conn.execute("COMMIT")
        store.rebuild()
        allowed = np.arange(0, 5_000, 7)
        _, found = store.search(base[:5], 10, allowed=allowed)
        assert set(found[found >= 0].tolist()) <= set(allowed.tolist())
        assert (found >= 0).sum() == 50


def _filled(tmp_path, base, params, name="vectors"):
    conn = connect_sqlite(tmp_path / f"{name}.sqlite")
    store = VectorTable(tmp_path, conn, base.shape[1], name=name, params=params)
    _commit(conn, store, np.arange(1, len(base) + 1), base)
    return conn, store


def _commit(conn, store, ids, vecs):
    conn.execute("BEGIN")
    store.write(ids, vecs)
    store.bump_generation()
    conn.execute("COMMIT")


def test_auto_builds_a_calibrated_ivf_and_readers_search_with_its_nprobe(tmp_path):
    base = clustered_vectors(20_000, 32, n_clusters=150, seed=3)
    queries = clustered_vectors(20_300, 32, n_clusters=150, seed=3)[20_000:]
    params = IndexParams(flat_max=1_000, target_recall=0.97)
    conn, store = _filled(tmp_path, base, params)
    store.save()
    cal = store.calibration
    assert store.index_type == "ivf"
    assert cal["recall@10"] >= 0.97 and cal["queries"] == 400 and cal["vectors"] == 20_000
    assert 1 <= cal["nprobe"] <= cal["nlist"] * params.ivf_max_scan
    # held-out queries, not the calibration sample, reach the target too
    _, found = store.search(queries, 10)
    assert _recall(found, exact_topk(base, queries, 10) + 1) >= 0.95
    reader = VectorTable(
        tmp_path, connect_sqlite(tmp_path / "vectors.sqlite", read_only=True), 32, params=IndexParams(), read_only=True
    )
    reader.load()
    assert reader.index_type == "ivf" and reader.calibration == cal
    import faiss

    assert faiss.extract_index_ivf(reader._index).nprobe == cal["nprobe"]


def test_auto_falls_back_to_a_calibrated_graph_when_ivf_would_scan_too_much(tmp_path):
    # Unclustered vectors: IVF needs a large share of its lists to reach the target.
    base = np.random.default_rng(4).standard_normal((12_000, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    conn, store = _filled(tmp_path, base, IndexParams(flat_max=1_000, target_recall=0.95))
    info = store.rebuild()
    assert info["type"] == store.index_type == "hnsw"
    rejected = store.calibration["ivf_rejected"]
    assert rejected["nprobe"] / rejected["nlist"] > 0.02 or rejected["recall@10"] < 0.95
    assert store.calibration["recall@10"] >= 0.95 and store.calibration["efSearch"] >= 16
    store.save()  # an auto store that chose the graph keeps it: no rebuild on save
    assert store.index_type == "hnsw"


def test_explicit_nprobe_is_kept_and_its_recall_reported(tmp_path):
    base = clustered_vectors(10_000, 32, n_clusters=100, seed=5)
    conn, store = _filled(tmp_path, base, IndexParams(index_type="ivf", ivf_nprobe=1, target_recall=0.999))
    store.rebuild()
    assert store.calibration["nprobe"] == 1 and 0 < store.calibration["recall@10"] <= 1


def test_a_collection_that_doubled_since_calibration_is_rebuilt_on_save(tmp_path):
    base = clustered_vectors(16_000, 32, n_clusters=100, seed=6)
    conn, store = _filled(tmp_path, base[:6_000], IndexParams(flat_max=1_000))
    store.save()
    assert store.calibration["vectors"] == 6_000
    _commit(conn, store, np.arange(6_001, 16_001), base[6_000:])
    store.add(np.arange(6_001, 16_001), base[6_000:])
    store.save()
    assert store.calibration["vectors"] == 16_000 and store.ntotal == 16_000


def test_index_params_follow_the_kb_config():
    from polymodal.config import KBConfig

    p = IndexParams.from_config(KBConfig(flat_max=10, ann_max=99, index_type="hnsw", target_recall=0.9))
    assert (p.flat_max, p.ann_max, p.index_type, p.target_recall) == (10, 99, "hnsw", 0.9)
    assert p.choose(5) == "hnsw" and IndexParams(flat_max=10, ann_max=99).choose(50) == "ivf"
    assert IndexParams(flat_max=10, ann_max=99).choose(100) == "ivfpq"
