"""CLI input: options are spelled out in full, counts must be positive, and a usage error is one line
(JSON with --json) with exit code 2. An ingest that adds nothing leaves no knowledge base behind."""

import argparse
import json

import pytest

from orchestrator.cli import build_parser, main


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home whose config uses the scripted LLM, so nothing here can load a real model."""
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "config.toml").write_text('[llm]\nbackend = "fake"\n[embedder]\nmodel = "hash"\n')
    monkeypatch.setenv("POLYMODAL_CONFIG", str(tmp_path / "config.toml"))
    return tmp_path


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_no_parser_matches_abbreviations():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 15  # the main parser, groups and their actions
    assert [p.prog for p in parsers if p.allow_abbrev] == []


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_abbreviated_option_is_not_taken_for_another(home, capsys):
    code, out, err = _run(capsys, "ask", "hello", "--kb", str(home / "kb"), "--k", "-3")
    assert code == 2 and out == ""
    assert err.splitlines() == ["error: polymodal: unrecognized arguments: --k -3 (see polymodal --help)"]


@pytest.mark.parametrize(
    "argv",
    [
        ("ask", "hello", "--kb", "KB", "-k", "-3"),
        ("ask", "hello", "-k", "0"),
        ("kb", "search", "hello", "--kb", "KB", "-k", "0"),
        ("images", "search", "cat", "-k", "-1"),
        ("generate", "a cat", "--n", "0"),
        ("generate", "a cat", "--steps", "-5"),
        ("edge", "simulate", "--devices", "0"),
        ("edge", "query", "cam", "classify", "--timeout", "0"),
        ("ingest", "docs", "--kb", "KB", "--chunk-tokens", "0"),
    ],
)
def test_a_non_positive_count_is_a_one_line_error(home, capsys, argv):
    argv = [str(home / "kb") if a == "KB" else a for a in argv]
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 2
    error = json.loads(out)
    assert error["ok"] is False and f"argument {argv[-2]}: expected a positive" in error["error"]
    assert err.splitlines() == [f"error: {error['error']}"]
    assert not (home / "kb").exists()


def test_a_usage_error_without_json_prints_nothing_on_stdout(home, capsys):
    code, out, err = _run(capsys, "ask", "hello", "-k", "-3")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: polymodal ask: argument -k: expected a positive integer, got '-3' (see polymodal ask --help)"
    ]


def test_ingest_of_nothing_leaves_no_knowledge_base(home, capsys):
    kb = home / "new-kb"
    code, out, err = _run(capsys, "ingest", str(home / "nonexistent"), "--kb", str(kb), "--json")
    assert code == 1
    report = json.loads(out)
    assert not report["ok"] and report["counts"]["skipped"] == 1
    assert not kb.exists()


def test_ingest_of_nothing_keeps_an_existing_knowledge_base(home, capsys):
    docs = home / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The greenhouse sensor reports temperature every minute.")
    kb = home / "kb"
    assert _run(capsys, "ingest", str(docs), "--kb", str(kb), "--json")[0] == 0
    assert _run(capsys, "ingest", str(home / "nonexistent"), "--kb", str(kb), "--json")[0] == 1
    code, out, _ = _run(capsys, "kb", "list", "--kb", str(kb), "--json")
    assert code == 0 and [d["source"] for d in json.loads(out)["documents"]] == [str(docs / "a.txt")]
