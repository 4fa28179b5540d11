"""The knowledge-base commands from the shell: --json output and exit codes."""

import json
import subprocess
import sys


def _run(*args, home):
    env = {"POLYMODAL_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True, env=env)


def test_ingest_list_search_delete_with_json(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Greenhouse\nThe greenhouse sensor reports temperature every minute.")
    (docs / "b.txt").write_text("The garden camera watches the cat.")
    kb = tmp_path / "kb"
    r = _run("ingest", str(docs), "--kb", str(kb), "--embedder", "hash", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["counts"]["added"] == 2
    r = _run("kb", "list", "--kb", str(kb), "--json", home=tmp_path)
    assert {d["source"].rsplit("/", 1)[-1] for d in json.loads(r.stdout)["documents"]} == {"a.md", "b.txt"}
    r = _run("kb", "search", "greenhouse temperature", "--kb", str(kb), "--json", home=tmp_path)
    hit = json.loads(r.stdout)["hits"][0]
    assert hit["source"].endswith("a.md") and hit["end"] > hit["start"]
    r = _run("kb", "delete", str(docs / "b.txt"), "--kb", str(kb), "--json", home=tmp_path)
    assert json.loads(r.stdout)["deleted"] == 1


def test_failures_exit_non_zero_with_one_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bad.txt").write_bytes(b"\x00\x01\x02" * 100)
    r = _run("ingest", str(docs), "--kb", str(tmp_path / "kb"), "--embedder", "hash", "--json", home=tmp_path)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert not out["ok"] and out["counts"]["skipped"] == 1
    r = _run("kb", "list", "--kb", str(tmp_path / "no-such-kb"), "--json", home=tmp_path)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"ok": False, "error": f"no text index at {tmp_path / 'no-such-kb'}"}
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
