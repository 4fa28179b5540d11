"""TextIndex: hybrid search with provenance, filters, upserts and deletes, ANN types; the index
contract (reopen, repair, readers, kill -9, model mismatch) comes from indexes.testing."""

import pytest

from indexes.embedders import HashEmbedder
from indexes.testing import IndexContractTests, TextIndexKit
from indexes.text import Document, TextIndex
from polymodal.errors import InputError, StoreError

DOCS = [
    Document("edge", "边缘AI让模型在设备上运行。量化可以把模型变小。", source="/kb/edge.md", type="md", tags=["edge"]),
    Document(
        "rag",
        "Retrieval augmented generation answers questions from a knowledge base with citations.",
        source="/kb/rag.txt",
        type="txt",
        tags=["llm"],
    ),
    Document(
        "clip",
        "CLIP embeds images and text in one space, so text can search photos.",
        source="/kb/clip.txt",
        type="txt",
        tags=["vision", "llm"],
    ),
]


class TestTextIndexContract(IndexContractTests):
    @pytest.fixture
    def kit(self, tmp_path):
        return TextIndexKit(tmp_path / "scratch")


@pytest.fixture
def kb(tmp_path):
    with TextIndex.open(tmp_path / "kb", HashEmbedder(64), chunk_tokens=50) as index:
        index.add(DOCS)
        yield index


def test_search_returns_typed_hits_with_provenance(kb):
    hits = kb.search("knowledge base citations", k=2)
    assert hits[0].doc_id == "rag"
    h = hits[0]
    assert h.source == "/kb/rag.txt" and h.chunk_id == "rag#0"
    doc = kb.get_by_ids(["rag"])[0]
    assert doc.text[h.start : h.end] == h.text


def test_bm25_handles_chinese_with_jieba(kb):
    hits = kb.search("量化模型", k=1, mode="bm25")
    assert hits and hits[0].doc_id == "edge"
    assert hits[0].bm25_score > 0


def test_modes_and_unknown_mode(kb):
    assert kb.search("photos text", k=1, mode="dense")[0].dense_score is not None
    with pytest.raises(InputError):
        kb.search("x", mode="magic")


def test_filters(kb):
    assert {h.doc_id for h in kb.search("model", k=5, filter={"tags": "llm"})} <= {"rag", "clip"}
    assert {h.doc_id for h in kb.search("model", k=5, filter={"type": "md"})} == {"edge"}
    assert kb.search("model", k=5, filter={"source": "/nowhere"}) == []
    assert {h.doc_id for h in kb.search("images", k=5, filter={"source_prefix": "/kb/c"})} == {"clip"}
    with pytest.raises(InputError):
        kb.search("x", filter={"colour": "red"})


def test_add_existing_id_refuses_and_upsert_replaces(kb):
    with pytest.raises(StoreError):
        kb.add([Document("rag", "other text")])
    kb.upsert([Document("rag", "Completely new words about gardening tomatoes.", source="/kb/rag.txt")])
    assert kb.count() == 3
    assert kb.get_by_ids(["rag"])[0].text.startswith("Completely")
    assert kb.search("gardening tomatoes", k=1)[0].doc_id == "rag"
    assert all("citations" not in h.text for h in kb.search("citations knowledge", k=5))


def test_delete_removes_both_sides_and_missing_ids_are_noop(kb):
    assert kb.delete(["clip", "does-not-exist"]) == 1
    assert kb.delete(["does-not-exist"]) == 0
    assert all(h.doc_id != "clip" for h in kb.search("CLIP images photos", k=5, mode="dense"))
    assert all(h.doc_id != "clip" for h in kb.search("CLIP images photos", k=5, mode="bm25"))
    assert kb.get_by_ids(["clip"]) == []
    assert kb.store.ntotal == kb.count_chunks()


def test_hnsw_and_ivfpq_indexes_serve_search(tmp_path):
    from indexes.store import IndexParams

    docs = [Document(f"d{i}", f"topic {i % 50} item {i} words {i * 7 % 13}") for i in range(3000)]
    for kind in ("hnsw", "ivfpq"):
        with TextIndex.open(tmp_path / kind, HashEmbedder(32), params=IndexParams(index_type=kind)) as kb:
            kb.add(docs)
            kb.save()
            assert kb.store.index_type == kind
            kb.delete(["d7"])
            hits = kb.search("topic 7 item 7", k=5, mode="dense")
            assert hits and all(h.doc_id != "d7" for h in hits)
        with TextIndex.open(tmp_path / kind, params=IndexParams(index_type=kind)) as kb:
            assert kb.store.index_type == kind
            assert len(kb.search("topic 9", k=5, mode="dense")) == 5


def test_a_knowledge_base_from_before_chunk_locations_opens_and_gains_them(tmp_path):
    import sqlite3

    from indexes.readers.base import Mark

    with TextIndex.open(tmp_path / "kb", HashEmbedder()) as kb:
        kb.add([Document("old", "Soil moisture is logged hourly.", source="old.txt")])
    conn = sqlite3.connect(tmp_path / "kb" / "index.sqlite")
    conn.execute("ALTER TABLE chunks DROP COLUMN metadata")  # the table as it was
    conn.commit()
    conn.close()
    with TextIndex.open(tmp_path / "kb", read_only=True) as ro:
        assert ro.search("soil moisture", k=1, mode="bm25")[0].location == {}
    with TextIndex.open(tmp_path / "kb") as kb:
        kb.add([Document("new", "Page two: valves open at dawn.", source="new.pdf", marks=[Mark(0, {"page": 2})])])
        assert kb.search("valves dawn", k=1, mode="bm25")[0].location == {"page": 2}
        assert kb.search("soil moisture", k=1, mode="bm25")[0].location == {}
