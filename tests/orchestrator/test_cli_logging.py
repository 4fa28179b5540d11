"""`-v/--verbose`, `--log-level` and `--version`: logs reach stderr at the level asked for and never
stdout, so `--json` output stays one JSON document."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

import orchestrator.registry as registry
from orchestrator.cli import main

REQUEST = "What is CLIP?"


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "DEFAULT_TOOLS", {"rag_answer": "tools.testing"})
    path = tmp_path / "config.toml"
    path.write_text('[llm]\nbackend = "fake"\n[embedder]\nmultilingual = "hash"\n', encoding="utf-8")
    yield path
    logging.getLogger().setLevel(logging.WARNING)


def _chat(config_file, capsys, *flags: str) -> tuple[dict, str]:
    assert main(["--config", str(config_file), *flags, "chat", REQUEST, "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err  # stdout parses as JSON: no log line in it


@pytest.mark.parametrize(
    "flags, info, debug",
    [
        ((), False, False),
        (("-v",), True, False),
        (("-vv",), True, True),
        (("--log-level", "debug"), True, True),
        (("-vv", "--log-level", "WARNING"), False, False),  # the explicit level wins
    ],
)
def test_levels_reach_stderr_only(config_file, capsys, flags, info, debug):
    out, err = _chat(config_file, capsys, *flags)
    assert out["ok"] is True
    assert ("INFO orchestrator.agent: request answered: plan by router (rag_answer)" in err) is info
    assert ("DEBUG orchestrator.executor: step 1 (rag_answer): ok" in err) is debug


def test_verbose_flag_after_the_command_works_too(config_file, capsys):
    assert main(["--config", str(config_file), "chat", REQUEST, "--json", "-v"]) == 0
    captured = capsys.readouterr()
    assert "request answered" in captured.err and json.loads(captured.out)["ok"] is True


def test_bad_log_level_is_a_one_line_usage_error(capsys):
    assert main(["--log-level", "LOUD", "doctor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--log-level" in err and "\n" not in err


def test_version_in_a_real_process():
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    from importlib.metadata import version

    assert proc.returncode == 0 and proc.stdout.strip() == f"polymodal {version('polymodal')}"
