"""Ingestion on Ray stores exactly what a single process stores, survives dying workers and a
killed driver, and re-embeds nothing committed. Each test runs on an in-process cluster and on a
real two-node cluster (tests/distributed/conftest.py)."""

from __future__ import annotations

import functools
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from indexes.distributed.ingest import ingest_on_ray
from indexes.distributed.testing import RecordingEmbedder, embedded_count, kb_snapshot
from indexes.ingest import ingest_paths
from indexes.readers.samples import build_mixed_folder
from indexes.text import TextIndex
from polymodal.config import Config
from polymodal.errors import InputError

pytestmark = pytest.mark.ray

WORDS = "river engine protein galaxy market harbour lantern copper violin glacier orchard signal".split()


def _config(model: str = "hash-64") -> Config:
    cfg = Config()
    cfg.embedder.model = model
    cfg.kb.ocr = False  # the scans are OCR'd by the reader tests; here they would only cost time
    return cfg


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A mixed folder (HTML, DOCX, a 20-page PDF, PPTX, XLSX, CSV, JSONL, EPUB), 40 text files and a broken PDF."""
    root = tmp_path_factory.mktemp("corpus")
    build_mixed_folder(root / "mixed")
    rng = random.Random(7)
    for i in range(40):
        paras = [" ".join(rng.choice(WORDS) + str(rng.randint(0, 30)) for _ in range(120)) for _ in range(3)]
        (root / f"notes-{i:02d}.md").write_text(f"# Note {i}\n\n" + "\n\n## Part\n\n".join(paras), encoding="utf-8")
    (root / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    return root


def _assert_same(a: Path, b: Path, queries=("river engine", "calibration constant thermal sensor", "Note 7")):
    sa, sb = kb_snapshot(a), kb_snapshot(b)
    assert sa["embedder"] == sb["embedder"]
    assert [d[:5] + d[6:] for d in sa["documents"]] == [d[:5] + d[6:] for d in sb["documents"]]
    assert sa["chunks"] == sb["chunks"]  # offsets, headings, locations (pages...), BM25 tokens
    assert sa["vectors"].keys() == sb["vectors"].keys()
    worst = max(float(np.abs(sa["vectors"][k] - sb["vectors"][k]).max()) for k in sa["vectors"])
    assert worst <= 1e-5
    with TextIndex.open(a, read_only=True) as ka, TextIndex.open(b, read_only=True) as kb:
        for q in queries:  # committed in the same order: the same hits, ties included
            for mode in ("hybrid", "dense", "bm25"):
                ha, hb = ka.search(q, k=8, mode=mode), kb.search(q, k=8, mode=mode)
                assert [(h.doc_id, h.start, h.end) for h in ha] == [(h.doc_id, h.start, h.end) for h in hb]
                assert np.allclose([h.score for h in ha], [h.score for h in hb], atol=1e-6)


def test_ray_ingest_equals_a_single_process(ray_env, corpus, tmp_path):
    single = ingest_paths(tmp_path / "one", [corpus], config=_config())
    report = ingest_on_ray(tmp_path / "ray", [corpus], address=ray_env.address, config=_config(), batch_chunks=64)
    by_status = lambda r: sorted((f.status, Path(f.path).name) for f in r.files)  # noqa: E731
    assert by_status(report) == by_status(single)
    assert ("skipped", "broken.pdf") in by_status(report)
    assert report.count("added") == single.count("added") >= 48
    assert report.stats["chunks"] == single.chunks > 0
    _assert_same(tmp_path / "one", tmp_path / "ray")
    again = ingest_on_ray(tmp_path / "ray", [corpus], address=ray_env.address, config=_config())
    assert again.count("added") == again.count("updated") == 0
    assert again.count("unchanged") == single.count("added")


def test_a_worker_dying_on_its_first_batch_changes_nothing(ray_env, corpus, tmp_path):
    ingest_paths(tmp_path / "clean", [corpus], config=_config())
    marker, log = tmp_path / "died-once", tmp_path / "embedded.log"
    factory = functools.partial(RecordingEmbedder, 64, log, marker)
    report = ingest_on_ray(
        tmp_path / "kb", [corpus], address=ray_env.address, config=_config(), embedder_factory=factory
    )
    assert marker.exists()  # an actor did die: Ray restarted it and retried its batch
    assert report.count("added") >= 48
    _assert_same(tmp_path / "clean", tmp_path / "kb")


def test_an_embedding_worker_killed_mid_ingest_changes_nothing(ray_env, corpus, tmp_path):
    from indexes.distributed.testing import kill_workers

    ingest_paths(tmp_path / "clean", [corpus], config=_config())
    killed: list[int] = []

    def progress(done: int, total: int, path: str) -> None:
        if not killed:  # after the first commit, while later batches are still being embedded
            killed.append(kill_workers("EmbedActor"))

    report = ingest_on_ray(
        tmp_path / "kb",
        [corpus],
        address=ray_env.address,
        config=_config(),
        files_per_task=2,
        embed_files=2,
        batch_chunks=1,
        on_progress=progress,
        embedder_factory=functools.partial(RecordingEmbedder, 64, delay=0.3),
    )
    assert killed and killed[0] >= 1  # a live embedding actor was SIGKILLed mid-run
    assert report.count("added") >= 48
    _assert_same(tmp_path / "clean", tmp_path / "kb")


KILLER = textwrap.dedent(
    """
    import functools, os, signal, sys
    from indexes.distributed.ingest import ingest_on_ray
    from indexes.distributed.testing import RecordingEmbedder
    from polymodal.config import Config
    kb, corpus, address, log = sys.argv[1:5]
    cfg = Config(); cfg.embedder.model = "hash-64"; cfg.kb.ocr = False
    def progress(done, total, path):
        print(done, flush=True)
        if done >= 8:
            os.kill(os.getpid(), signal.SIGKILL)
    ingest_on_ray(kb, [corpus], address=address, config=cfg, files_per_task=2, embed_files=2, batch_chunks=1,
                  on_progress=progress, embedder_factory=functools.partial(RecordingEmbedder, 64, log))
    """
)


def test_a_killed_driver_resumes_without_embedding_anything_twice(ray_env, corpus, tmp_path):
    kb, log = tmp_path / "kb", tmp_path / "embedded.log"
    out = subprocess.run(
        [sys.executable, "-c", KILLER, str(kb), str(corpus), ray_env.address, str(tmp_path / "first.log")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == -9, out.stderr[-2000:]
    committed = kb_snapshot(kb)
    assert 8 <= len(committed["documents"]) < 48  # some batches committed, not all

    report = ingest_on_ray(
        kb,
        [corpus],
        address=ray_env.address,
        config=_config(),
        embedder_factory=functools.partial(RecordingEmbedder, 64, log),
    )
    ingest_paths(tmp_path / "clean", [corpus], config=_config())
    clean = kb_snapshot(tmp_path / "clean")
    assert report.count("unchanged") == len(committed["documents"])
    assert embedded_count(log) == len(clean["chunks"]) - len(committed["chunks"])  # nothing committed re-embedded
    _assert_same(tmp_path / "clean", kb)


def test_bad_input_is_a_one_line_error_and_stores_nothing(ray_env, tmp_path):
    with pytest.raises(InputError):
        ingest_on_ray(tmp_path / "kb", [], address=ray_env.address, config=_config())
    report = ingest_on_ray(tmp_path / "kb", [tmp_path / "nowhere"], address=ray_env.address, config=_config())
    assert [(f.status, f.reason) for f in report.files] == [("skipped", "no such file or folder")]
    assert not (tmp_path / "kb").exists()  # no empty knowledge base left behind


@pytest.mark.slow
def test_real_embedder_on_ray_matches_within_1e5(ray_env, corpus, tmp_path):
    cfg = _config("all-MiniLM-L6-v2")
    ingest_paths(tmp_path / "one", [corpus / "mixed"], config=cfg)
    ingest_on_ray(tmp_path / "ray", [corpus / "mixed"], address=ray_env.address, config=cfg)
    _assert_same(tmp_path / "one", tmp_path / "ray", queries=("thermal sensor calibration", "latency on a board"))
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["embedder"] == "all-MiniLM-L6-v2"


def test_the_cli_ingests_on_ray_with_json_and_fails_with_one_line(ray_env, corpus, tmp_path, capsys):
    from orchestrator.cli import main

    kb = tmp_path / "kb"
    args = ["ingest", str(corpus / "mixed"), "--kb", str(kb), "--embedder", "hash-64", "--json"]
    rc = main([*args, "--ray", ray_env.address])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"] and out["counts"]["added"] >= 8 and out["stats"]["chunks"] == out["chunks"]
    rc = main(["ingest", str(corpus / "mixed"), "--kb", str(kb), "--ray", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "cannot connect to the Ray cluster at 127.0.0.1:1" in err and "\n" not in err
