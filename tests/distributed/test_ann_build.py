"""IVF / IVF-PQ builds on Ray equal the single-process build: same inverted lists (byte for byte),
same search results, same calibration; also when an actor is killed mid-build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexes.ann import faiss_nlist
from indexes.distributed.ann_build import ACTOR_PREFIX, build_on_ray
from indexes.store import IndexParams, VectorTable, connect_sqlite
from indexes.synthetic import clustered_vectors
from polymodal.errors import EmbedderMismatch, StoreError

pytestmark = pytest.mark.ray

N, DIM = 24_000, 32
IDS = np.arange(N, dtype=np.int64) * 3 + 7  # sparse ids, as a store with deletions has
DATA = clustered_vectors(N + 100, DIM, n_clusters=60, spread=0.6, seed=5)
QUERIES = DATA[N:]


def _table(folder: Path, kind: str, dim: int = DIM, vectors: np.ndarray = DATA[:N]) -> VectorTable:
    conn = connect_sqlite(folder / f"{kind}.sqlite")
    params = IndexParams(index_type=kind, calibration_queries=150, ray_slice_rows=3_000)
    table = VectorTable(folder, conn, dim, name="vecs", params=params)
    if len(vectors):
        conn.execute("BEGIN")
        table.write(IDS[: len(vectors)], vectors)
        table.bump_generation()
        conn.execute("COMMIT")
    return table


def _lists(table: VectorTable) -> list[np.ndarray]:
    """The external ids in each inverted list, in list order."""
    import faiss

    ivf = faiss.extract_index_ivf(table._index)
    id_map = faiss.vector_to_array(table._index.id_map)
    inv = ivf.invlists
    return [id_map[faiss.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy()] for i in range(ivf.nlist)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The single-process builds, once for both clusters."""
    out = {}
    for kind in ("ivf", "ivfpq"):
        table = _table(tmp_path_factory.mktemp(f"single-{kind}"), kind)
        info = table.rebuild()
        out[kind] = (table, info)
    return out


def _assert_same(table: VectorTable, info: dict, ref: VectorTable, ref_info: dict) -> None:
    import faiss

    assert info["type"] == ref_info["type"] and info["on_ray"]
    assert table.ntotal == ref.ntotal == N
    assert faiss_nlist(table._index) == faiss_nlist(ref._index)
    assert all(np.array_equal(a, b) for a, b in zip(_lists(table), _lists(ref), strict=True))
    assert info["calibration"] == ref_info["calibration"]  # same nprobe (and re-rank), same recall
    assert np.array_equal(table.search(QUERIES, 10)[1], ref.search(QUERIES, 10)[1])
    assert np.array_equal(faiss.serialize_index(table._index), faiss.serialize_index(ref._index))


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_ray_build_equals_the_single_process_build(ray_env, reference, tmp_path, kind):
    table = _table(tmp_path, kind)
    seen: list[int] = []
    info = build_on_ray(table, progress=seen.append)
    ref, ref_info = reference[kind]
    _assert_same(table, info, ref, ref_info)
    assert seen == sorted(seen) and seen[-1] == N - info["calibration"]["queries"]  # held-out added after
    assert info["calibration"]["recall@10"] >= 0.97
    table.save()  # and the saved view loads back as the same index
    again = VectorTable(tmp_path, table.conn, DIM, name="vecs", params=table.params)
    assert again.load()["loaded"] and np.array_equal(again.search(QUERIES, 10)[1], ref.search(QUERIES, 10)[1])


def test_an_actor_killed_mid_build_is_restarted_and_the_index_is_still_equal(ray_env, reference, tmp_path):
    import ray

    table = _table(tmp_path, "ivf")
    killed: list[str] = []

    def kill_one(added: int) -> None:
        if killed:
            return
        names = [n for n in ray.util.list_named_actors() if n.startswith(ACTOR_PREFIX)]
        ray.kill(ray.get_actor(names[0]), no_restart=False)  # a crash: Ray restarts it, its slices retry
        killed.append(names[0])

    info = build_on_ray(table, progress=kill_one)
    assert killed
    _assert_same(table, info, *reference["ivf"])


def test_an_empty_table_is_a_one_line_error(ray_env, tmp_path):
    table = _table(tmp_path, "ivf", vectors=DATA[:0])
    with pytest.raises(StoreError, match="is empty") as err:
        build_on_ray(table)
    assert "\n" not in str(err.value)


def test_a_dimension_mismatch_is_a_one_line_error_and_loses_nothing(ray_env, tmp_path):
    written = _table(tmp_path, "ivf", dim=16, vectors=clustered_vectors(1_000, 16, seed=1))
    table = VectorTable(tmp_path, written.conn, DIM, name="vecs", params=written.params)
    with pytest.raises(EmbedderMismatch, match="holds 16-d vectors but was opened as 32-d") as err:
        build_on_ray(table)
    assert "\n" not in str(err.value)
    assert written.count() == 1_000 and len(written.vectors(IDS[:3])[int(IDS[0])]) == 16
