"""ShardedTextIndex against one unsharded TextIndex holding the same documents: the same documents
and chunks, the same rankings (dense and BM25 exactly, ties aside; hybrid measured), stable routing,
one-line errors for broken knowledge bases, and the same on Ray actors (both cluster kinds)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexes.distributed.shards import ShardedTextIndex, is_sharded, shard_of
from indexes.embedders import HashEmbedder
from indexes.text import Document, TextIndex
from polymodal.errors import EmbedderMismatch, InputError, StoreCorrupt, StoreError

pytestmark = pytest.mark.ray

_STEMS = "alpha beta gamma delta omega river cloud stone maple cedar lumen quartz falcon harbor meadow".split()
WORDS = [a + b for a in _STEMS for b in _STEMS]  # 225 words: BM25 statistics differ between shards
QUERIES = ["alphariver cloudstone", "falconharbor", "maplecedar lumenquartz meadowomega", "gammadelta", "riverriver"]


def corpus(n: int = 160, seed: int = 7) -> list[Document]:
    rng = random.Random(seed)
    return [
        Document(
            id=f"doc-{i}",
            text=" ".join(rng.choice(WORDS[: 40 + i % 185]) for _ in range(rng.randint(15, 260))),
            source=f"/notes/{i % 5}/n{i}.txt",
            tags=[f"t{i % 3}"],
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One unsharded index and a 4-shard one, same documents."""
    root = tmp_path_factory.mktemp("pair")
    docs = corpus()
    emb = HashEmbedder(64)
    with TextIndex.open(root / "one", emb) as one, ShardedTextIndex.open(root / "kb", emb, shards=4) as kb:
        one.upsert(docs)
        kb.upsert(docs)
    return root, docs


def ranked(hits):
    return [(h.chunk_id, round(h.score, 5)) for h in hits]


def assert_same_ranking(a, b, tol=1e-5):
    """Equal scores rank by rank; ids equal wherever a score is not tied with the next ones."""
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=tol)
    cut = a[-1].score if a else 0.0
    assert {h.chunk_id for h in a if h.score > cut + tol} == {h.chunk_id for h in b if h.score > cut + tol}


def test_same_documents_and_chunks_spread_over_every_shard(pair):
    root, docs = pair
    with TextIndex.open(root / "one", read_only=True) as one, ShardedTextIndex.open(root / "kb", read_only=True) as kb:
        assert kb.count() == one.count() == len(docs)
        assert kb.count_chunks() == one.count_chunks()
        counts = kb.shard_counts()
        assert len(counts) == 4 and min(counts) > 0
        listed = kb.list_documents()
        assert [d.source for d in listed] == sorted(d.source for d in listed)  # ordered by source, as TextIndex
        assert sorted(d.doc_id for d in listed) == sorted(d.doc_id for d in one.list_documents())
        assert kb.content_hashes() == one.content_hashes()
        got = kb.get_by_ids(["doc-9", "missing", "doc-3"])
        assert [d.id for d in got] == ["doc-9", "doc-3"] and got[0].text == docs[9].text
    assert is_sharded(root / "kb") and not is_sharded(root / "one")


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_dense_and_bm25_rank_as_the_unsharded_index(pair, mode):
    root, _ = pair
    with TextIndex.open(root / "one", read_only=True) as one, ShardedTextIndex.open(root / "kb", read_only=True) as kb:
        for q in QUERIES:
            a, b = one.search(q, 10, mode=mode), kb.search(q, 10, mode=mode)
            assert len(a) == len(b) > 0
            assert_same_ranking(a, b)
            for h in b:  # provenance as TextIndex gives it
                assert h.text == h.text.strip() and h.source.startswith("/notes/") and h.end > h.start
                assert (h.dense_score if mode == "dense" else h.bm25_score) == pytest.approx(h.score)


def test_hybrid_matches_and_per_shard_bm25_statistics_would_not(pair):
    """Hybrid fuses ranks: where a list has tied scores, the order within the tie (FAISS's or
    FTS5's on one index, shard order here) moves the RRF scores, so hybrid is measured, not exact."""
    root, _ = pair
    with TextIndex.open(root / "one", read_only=True) as one, ShardedTextIndex.open(root / "kb", read_only=True) as kb:
        overlap, exact, shard_stats_exact = [], 0, 0
        for q in QUERIES:
            a, b = one.search(q, 10), kb.search(q, 10)
            overlap.append(len({h.chunk_id for h in a} & {h.chunk_id for h in b}) / 10)
            exact += ranked(a) == ranked(b)
            own = kb.search(q, 10, mode="bm25", bm25_stats="shard")
            one_bm25 = one.search(q, 10, mode="bm25")
            shard_stats_exact += [h.score for h in own] == pytest.approx([h.score for h in one_bm25])
        assert sum(overlap) / len(overlap) >= 0.9 and exact >= 3, (overlap, exact)
        assert shard_stats_exact < len(QUERIES)  # each shard's own IDF scores differently: why they are global


def test_filters_apply_in_every_shard(pair):
    root, _ = pair
    flt = {"source_prefix": "/notes/2/", "tags": ["t1", "t2"]}
    with TextIndex.open(root / "one", read_only=True) as one, ShardedTextIndex.open(root / "kb", read_only=True) as kb:
        for mode in ("dense", "bm25", "hybrid"):
            a, b = one.search(QUERIES[0], 5, mode=mode, filter=flt), kb.search(QUERIES[0], 5, mode=mode, filter=flt)
            assert b and all(h.source.startswith("/notes/2/") for h in b)
            assert_same_ranking(a, b)
        few = {"doc_id": ["doc-150", "doc-151"]}  # in one or two shards: the others still count for IDF
        assert len({shard_of(d, 4) for d in few["doc_id"]}) < 4
        a, b = one.search("alphariver", 5, mode="bm25", filter=few), kb.search("alphariver", 5, mode="bm25", filter=few)
        assert len(b) == 2 and [h.chunk_id for h in b] == [h.chunk_id for h in a]
        assert [h.score for h in b] == pytest.approx([h.score for h in a], rel=1e-6)
        assert kb.search(QUERIES[0], 5, filter={"doc_id": "nope"}) == []
        with pytest.raises(InputError, match="unknown filter key"):
            kb.search(QUERIES[0], 5, filter={"colour": "red"})


def test_one_shard_is_the_unsharded_index(tmp_path):
    docs = corpus(60)
    with (
        TextIndex.open(tmp_path / "one", "hash-64") as one,
        ShardedTextIndex.open(tmp_path / "kb", "hash-64", shards=1) as kb,
    ):
        one.upsert(docs)
        kb.upsert(docs)
        for q in QUERIES:
            assert ranked(kb.search(q, 8)) == ranked(one.search(q, 8))


def test_routing_is_stable_across_processes():
    ids = [f"doc-{i}" for i in range(50)] + ["ünï", "a/b#c"]
    code = (
        "import sys, json; from indexes.distributed.shards import shard_of; "
        "print(json.dumps([shard_of(i, 16) for i in json.loads(sys.argv[1])]))"
    )
    seen = set()
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, json.dumps(ids)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])},
        ).stdout
        seen.add(out.strip())
    assert seen == {json.dumps([shard_of(i, 16) for i in ids])}
    assert len({shard_of(i, 16) for i in ids}) > 8


def test_upsert_replaces_a_document_in_its_own_shard_only(tmp_path):
    docs = corpus(40)
    with ShardedTextIndex.open(tmp_path / "kb", "hash-64", shards=4) as kb:
        kb.upsert(docs)
        before = kb.shard_counts()
        home = shard_of("doc-5", 4)
        kb.upsert([Document(id="doc-5", text="zebra quagga okapi", source="/new.txt")])
        assert kb.shard_counts() == before and kb.count() == 40
        assert kb.get_by_ids(["doc-5"])[0].text == "zebra quagga okapi"
        for i in range(4):  # replaced in its shard; no copy anywhere else
            with TextIndex.open(tmp_path / "kb" / f"shard-{i:03d}", read_only=True) as shard:
                assert [d.text for d in shard.get_by_ids(["doc-5"])] == (["zebra quagga okapi"] if i == home else [])
        assert kb.search("zebra okapi", 1, mode="bm25")[0].doc_id == "doc-5"
        with pytest.raises(StoreError, match="already in the index"):
            kb.add([Document(id="fresh", text="new"), Document(id="doc-6", text="again")])
        assert kb.count() == 40 and kb.get_by_ids(["fresh"]) == []  # nothing written
        assert kb.delete(["doc-5", "unknown"]) == 1 and kb.count() == 39
        kb.save()
    for i in range(4):  # each shard holds exactly the ids routed to it
        with TextIndex.open(tmp_path / "kb" / f"shard-{i:03d}", read_only=True) as shard:
            assert all(shard_of(d.doc_id, 4) == i for d in shard.list_documents())
            assert len(shard.get_by_ids(["doc-6"])) == (i == shard_of("doc-6", 4))


def test_broken_knowledge_bases_are_one_line_errors_and_lose_nothing(tmp_path):
    kb_dir = tmp_path / "kb"
    with ShardedTextIndex.open(kb_dir, "hash-64", shards=3) as kb:
        kb.upsert(corpus(30))
    (tmp_path / "file").write_text("x")

    def err(exc_type, match, path=kb_dir, **kw):
        with pytest.raises(exc_type, match=match) as info:
            ShardedTextIndex.open(path, **kw).close()
        assert "\n" not in str(info.value)

    err(InputError, "is a file", tmp_path / "file")
    err(InputError, "no sharded knowledge base", tmp_path / "nowhere", read_only=True)
    err(InputError, "needs shards", tmp_path / "new", embedder="hash-64")
    err(StoreError, "has 3 shards, not 4", shards=4)
    err(EmbedderMismatch, "built with embedder 'hash-64'", embedder=HashEmbedder(32))
    with TextIndex.open(tmp_path / "plain", "hash-64"):
        pass
    err(StoreError, "unsharded text index", tmp_path / "plain", shards=2)
    with ShardedTextIndex.open(kb_dir, read_only=True) as kb:
        with pytest.raises(StoreError, match="read-only"):
            kb.upsert([Document(id="x", text="y")])

    manifest = (kb_dir / "shard-001" / "manifest.json").read_text()
    (kb_dir / "shard-001" / "manifest.json").write_text("{not json")
    err(StoreCorrupt, "shard 1 of .* unreadable manifest", read_only=True)
    (kb_dir / "shard-001" / "manifest.json").write_text(manifest.replace('"hash-64"', '"hash-32"'))
    err(EmbedderMismatch, "shard 1 of .* holds embedder 'hash-32'", read_only=True)
    (kb_dir / "shard-001" / "manifest.json").write_text(manifest)
    moved = shutil.move(kb_dir / "shard-002", tmp_path / "aside")
    err(StoreCorrupt, "shard 2 of .* is missing", read_only=True)
    shutil.move(moved, kb_dir / "shard-002")
    top = (kb_dir / "shards.json").read_text()
    (kb_dir / "shards.json").write_bytes(b"\x00\xff binary")
    err(StoreCorrupt, "unreadable shards.json")
    (kb_dir / "shards.json").write_text(top)
    sqlite = (kb_dir / "shard-000" / "index.sqlite").read_bytes()
    (kb_dir / "shard-000" / "index.sqlite").write_bytes(b"not a database" * 100)
    err(StoreCorrupt, "shard 0: unreadable SQLite database", read_only=True)
    (kb_dir / "shard-000" / "index.sqlite").write_bytes(sqlite)
    with ShardedTextIndex.open(kb_dir, read_only=True) as kb:  # all restored: nothing was lost
        assert kb.count() == 30


def test_on_ray_actors_the_ranking_is_the_local_one(pair, ray_env):
    root, _ = pair
    with ShardedTextIndex.open(root / "kb", read_only=True) as local:
        want = {(q, m): ranked(local.search(q, 10, mode=m)) for q in QUERIES[:3] for m in ("dense", "bm25", "hybrid")}
    with ShardedTextIndex.open(root / "kb", read_only=True, ray=ray_env.address) as kb:
        assert kb.count() == 160
        for (q, m), hits in want.items():
            assert ranked(kb.search(q, 10, mode=m)) == hits


def test_ray_writers_and_dead_shard_actors(tmp_path, ray_env):
    import ray

    docs = corpus(40)
    with ShardedTextIndex.open(tmp_path / "kb", "hash-64", shards=3, ray=ray_env.address) as kb:
        kb.upsert(docs)
        assert kb.count() == 40
        want = ranked(kb.search(QUERIES[1], 5))
        ray.kill(kb._backend.actors[1], no_restart=False)  # Ray restarts it; the search is retried
        assert ranked(kb.search(QUERIES[1], 5)) == want
        ray.kill(kb._backend.actors[2], no_restart=True)
        with pytest.raises(StoreError, match=r"shard 2 \(.*shard-002\) failed: its Ray actor is gone") as info:
            kb.search(QUERIES[1], 5)
        assert "\n" not in str(info.value)
    with ShardedTextIndex.open(tmp_path / "kb", read_only=True) as kb:  # every write kept
        assert kb.count() == 40 and ranked(kb.search(QUERIES[1], 5)) == want
    (tmp_path / "kb" / "shard-000" / "index.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreCorrupt, match=r"^shard 0 \(shard-000\): unreadable SQLite database in .*$"):
        ShardedTextIndex.open(tmp_path / "kb", read_only=True, ray=ray_env.address)


@pytest.mark.slow
def test_minilm_sharded_search_finds_what_the_unsharded_index_finds(tmp_path):
    topics = {
        "cooking": "Simmer the tomato sauce slowly with garlic and basil before adding the pasta.",
        "astronomy": "The telescope revealed the rings of Saturn and four of its largest moons.",
        "finance": "Interest rates rose again, and bond prices fell as investors sold treasuries.",
        "biology": "Mitochondria produce most of the cell's energy through oxidative phosphorylation.",
        "sailing": "Trim the mainsail and ease the jib when the wind shifts to a broad reach.",
        "music": "The violin concerto opens with a quiet melody before the orchestra joins in.",
    }
    docs = [
        Document(
            id=f"{t}-{j}", text=f"{text} Note {j} about {t}: " + " ".join(text.split()[j % 5 :]), source=f"/{t}/{j}.md"
        )
        for t, text in topics.items()
        for j in range(6)
    ]
    with TextIndex.open(tmp_path / "one", "all-MiniLM-L6-v2") as one:
        one.upsert(docs)
        with ShardedTextIndex.open(tmp_path / "kb", "all-MiniLM-L6-v2", shards=4) as kb:
            kb.upsert(docs)
            for q in ("how do planets and moons look through a telescope", "what powers a living cell"):
                a, b = one.search(q, 6, mode="dense"), kb.search(q, 6, mode="dense")
                assert_same_ranking(a, b, tol=1e-4)
                topic = "astronomy" if "telescope" in q else "biology"
                # one topic's notes share their words: BM25 ties among them, so compare topics, not ids
                assert [h.doc_id.split("-")[0] for h in kb.search(q, 3)] == [topic] * 3
                assert [h.doc_id.split("-")[0] for h in one.search(q, 3)] == [topic] * 3


def _cli(*args, home, extra_path=""):
    import os

    env = {
        "POLYMODAL_HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": extra_path,
        "POLYMODAL_CACHE": os.environ.get("POLYMODAL_CACHE", ""),
    }
    cmd = [sys.executable, "-m", "orchestrator.cli", *args, "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return r.returncode, json.loads(r.stdout), r.stderr


def test_cli_creates_ingests_searches_and_asks_a_sharded_kb(tmp_path):
    docs, kb = tmp_path / "docs", str(tmp_path / "kb")
    docs.mkdir()
    (docs / "france.txt").write_text("Paris is the capital of France. The Seine flows through Paris.")
    (docs / "llama.txt").write_text("The llama is a domesticated camelid from South America.")
    (docs / "tea.md").write_text("# Tea\nGreen tea is steamed or pan-fired soon after picking.")
    code, out, err = _cli("kb", "create", "--kb", kb, "--shards", "3", "--embedder", "hash", home=tmp_path)
    assert code == 0, err
    assert out == {"ok": True, "kb": kb, "shards": 3, "embedder": "hash-64", "documents": 0}
    code, out, err = _cli("ingest", str(docs), "--kb", kb, home=tmp_path)
    assert code == 0 and out["counts"]["added"] == 3, err
    code, out, _ = _cli("ingest", str(docs), "--kb", kb, home=tmp_path)
    assert out["counts"]["unchanged"] == 3  # content hashes read from every shard
    code, out, _ = _cli("kb", "list", "--kb", kb, home=tmp_path)
    assert sorted(Path(d["source"]).name for d in out["documents"]) == ["france.txt", "llama.txt", "tea.md"]
    code, out, _ = _cli("kb", "search", "capital of France", "--kb", kb, home=tmp_path)
    assert out["hits"][0]["source"].endswith("france.txt") and out["hits"][0]["end"] > 0
    code, out, _ = _cli("kb", "create", "--kb", kb, "--shards", "5", home=tmp_path)
    assert code == 1 and "has 3 shards, not 5" in out["error"]

    (tmp_path / "scripted_llm.py").write_text(
        "from tools.llm import FakeChatModel\n\n"
        "class Model(FakeChatModel):\n"
        "    @classmethod\n"
        "    def from_config(cls, cfg):\n"
        "        return cls(default='Paris is the capital of France [1].')\n"
    )
    (tmp_path / "config.toml").write_text('[llm]\nbackend = "scripted_llm:Model"\n')
    config = ["--config", str(tmp_path / "config.toml")]
    code, out, err = _cli(
        *config, "ask", "What is the capital of France?", "--kb", kb, home=tmp_path, extra_path=str(tmp_path)
    )
    assert code == 0, err
    assert out["citations"][0]["source"].endswith("france.txt")
