"""`polymodal doctor` says in one line whether llama.cpp's AMX matmul is in use."""

from __future__ import annotations

import json

from orchestrator.cli import main
from tools.llm import cpu_check
from tools.llm.cpu_check import AmxVerdict


def _amx_line(capsys) -> dict:
    assert main(["doctor", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    (line,) = [c for c in checks if c["name"] == "llama.cpp AMX"]
    return line


def test_doctor_says_there_is_no_amx(capsys, monkeypatch):
    monkeypatch.setattr(cpu_check, "host_has_amx", lambda: False)
    line = _amx_line(capsys)
    assert line["ok"] and line["detail"] == "no AMX on this CPU"


def test_doctor_says_when_the_amx_check_failed(capsys, monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(cpu_check, "host_has_amx", lambda: True)
    monkeypatch.setattr("polymodal.models.resolve_llm_model", lambda model_name, cache=None: str(model))
    crashed = AmxVerdict("failed", "AMX matmul crashed (SIGSEGV): llama.cpp runs without AMX")
    monkeypatch.setattr(cpu_check, "amx_verdict", lambda path, cache=None: crashed)
    line = _amx_line(capsys)
    assert not line["ok"] and "SIGSEGV" in line["detail"] and "without AMX" in line["disables"]
