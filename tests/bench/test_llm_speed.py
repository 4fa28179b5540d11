"""bench.llm_speed's choice of builds: one row and a reason without AMX; on an AMX host, the non-AMX wheel the
Makefile built beside the installed one, unpacked once for a child process."""

from __future__ import annotations

import json
import zipfile
from importlib.metadata import version

import pytest

from bench import llm_speed
from tools.llm import cpu_check
from tools.llm.cpu_check import AmxVerdict


def test_without_amx_one_build_and_the_reason(monkeypatch):
    monkeypatch.setattr(cpu_check, "host_has_amx", lambda: False)
    found, note = llm_speed.builds()
    assert found == [("installed build", None)] and "no AMX on this CPU" in note


def test_with_amx_the_non_amx_wheel_is_the_baseline(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.setenv("POLYMODAL_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu_check, "host_has_amx", lambda: True)
    monkeypatch.setattr(cpu_check, "amx_verdict", lambda path, cache=None: AmxVerdict("ok", "AMX matmul checked: on"))
    monkeypatch.setattr("polymodal.models.offline_llm_path", lambda cache=None: tmp_path / "m.gguf")
    house = tmp_path / "wheels" / f"llama-cpp-python-{version('llama-cpp-python')}-abc"
    house.mkdir(parents=True)
    with zipfile.ZipFile(house / "llama_cpp_python-0-py3-none-linux_x86_64.whl", "w") as zf:
        zf.writestr("llama_cpp/__init__.py", "")
        zf.writestr("llama_cpp/lib/libggml-cpu.so", b"\x7fELF")
    (house / "build.json").write_text(json.dumps({"amx": "off"}))
    found, note = llm_speed.builds()
    assert [label for label, _ in found] == ["installed build (AMX ok)", "non-AMX build (baseline)"]
    site = found[1][1]
    assert (site / "llama_cpp" / "lib" / "libggml-cpu.so").is_file() and note == "AMX: AMX matmul checked: on"
    assert llm_speed.builds()[0][1][1] == site  # unpacked once


def test_decode_line_names_the_memory_limit():
    line = llm_speed.decode_line(13.5, 1_000_000_000, 20.0)
    assert "68% of the memory limit" in line and "20.0 tok/s" in line and "compute-bound" in line
