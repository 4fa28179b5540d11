"""`polymodal chat`: --json output, exit codes, conversation files."""

from __future__ import annotations

import json

import pytest

import orchestrator.registry as registry
from orchestrator.cli import main


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    # the fake rag tool stands in for the real one; the LLM is the scripted fake backend
    monkeypatch.setattr(registry, "DEFAULT_TOOLS", {"rag_answer": "tools.testing", "generate_image": "tools.testing"})
    path = tmp_path / "config.toml"
    path.write_text('[llm]\nbackend = "fake"\n[embedder]\nmultilingual = "hash"\n', encoding="utf-8")
    return path


def test_chat_json_prints_answer_plan_and_citations(config_file, capsys):
    code = main(["--config", str(config_file), "chat", "What is CLIP?", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] is True
    assert out["answer"] == "Answer about What is CLIP? [1]"
    assert out["plan"]["steps"][0]["tool"] == "rag_answer" and out["citations"][0]["source"] == "kb/edge-ai.md"


def test_chat_conversation_file_carries_follow_ups(config_file, tmp_path, capsys):
    conv = tmp_path / "c.json"
    assert main(["--config", str(config_file), "chat", "draw a lighthouse", "--conversation", str(conv)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_file), "chat", "make it bluer", "--conversation", str(conv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"][0]["args"]["prompt"] == "a lighthouse, bluer"
    assert len(json.loads(conv.read_text(encoding="utf-8"))["turns"]) == 2


def test_chat_plan_only(config_file, capsys):
    assert main(["--config", str(config_file), "chat", "draw a picture of a fox", "--plan-only", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"][0]["tool"] == "generate_image"


def test_chat_that_cannot_be_planned_exits_non_zero(config_file, capsys):
    code = main(["--config", str(config_file), "chat", "zxqv", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False and "could not plan" in out["answer"]


def test_chat_bad_conversation_file_is_one_line_error(config_file, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["--config", str(config_file), "chat", "hi", "--conversation", str(bad)]) == 1
    assert capsys.readouterr().err.strip().startswith("error: not a saved polymodal conversation")
