"""The AMX start-up check: a crashing child is a verdict, never our crash; verdicts are cached per build;
the llama.cpp backend loads without the AMX buffer type where the check failed."""

from __future__ import annotations

import sys

import pytest

from tools.llm import cpu_check
from tools.llm.cpu_check import AmxVerdict, amx_verdict, host_has_amx, no_amx_params, run_probe

SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
SUCCEED = [sys.executable, "-c", "pass"]


def test_a_child_killed_by_sigsegv_is_a_failed_verdict_and_this_process_lives():
    verdict = run_probe(SEGFAULT)
    assert verdict.status == "failed" and "SIGSEGV" in verdict.detail
    assert not verdict.use_amx


def test_probe_exit_codes():
    assert run_probe(SUCCEED) == AmxVerdict("ok", "AMX matmul checked: on")
    assert run_probe([sys.executable, "-c", "raise SystemExit(3)"]).status == "off"
    failed = run_probe([sys.executable, "-c", "import sys; sys.exit('ldtilecfg trouble')"])
    assert failed.status == "failed" and "ldtilecfg trouble" in failed.detail
    assert run_probe([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.5).status == "failed"


def test_host_has_amx_reads_the_cpu_flags(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_check.platform, "machine", lambda: "x86_64")
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_vnni\n")
    assert host_has_amx(amx) and not host_has_amx(plain) and not host_has_amx(tmp_path / "missing")


def test_without_amx_the_verdict_says_so_and_runs_no_child(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_check, "host_has_amx", lambda: False)
    verdict = amx_verdict("model.gguf", tmp_path, probe=SEGFAULT)
    assert verdict == AmxVerdict("absent", "no AMX on this CPU") and verdict.use_amx
    assert not (tmp_path / "llm").exists()


def test_the_verdict_is_cached_per_build(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")  # the models extra: make installs it
    monkeypatch.setattr(cpu_check, "host_has_amx", lambda: True)
    first = amx_verdict("model.gguf", tmp_path, probe=SEGFAULT)
    assert first.status == "failed"
    (cached,) = (tmp_path / "llm").glob("amx-check-*.json")
    assert amx_verdict("model.gguf", tmp_path, probe=SUCCEED) == first  # cached: no new child
    cached.unlink()
    assert amx_verdict("model.gguf", tmp_path, probe=SUCCEED).status == "ok"


def test_no_amx_params_turns_off_the_extra_buffer_types_only_while_open():
    lib = pytest.importorskip("llama_cpp.llama_cpp")
    assert lib.llama_model_default_params().use_extra_bufts
    with no_amx_params():
        assert not lib.llama_model_default_params().use_extra_bufts
    assert lib.llama_model_default_params().use_extra_bufts


@pytest.mark.parametrize(("status", "extra_bufts"), [("failed", False), ("ok", True), ("absent", True)])
def test_the_backend_loads_without_amx_where_the_check_failed(tmp_path, monkeypatch, status, extra_bufts):
    llama_cpp = pytest.importorskip("llama_cpp")
    from tools.llm.llama_cpp import LlamaCppChatModel

    seen = []

    class Recorder:
        def __init__(self, **kw):
            seen.append(llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts)

    monkeypatch.setattr(llama_cpp, "Llama", Recorder)
    monkeypatch.setattr(cpu_check, "amx_verdict", lambda path: AmxVerdict(status, "test"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    LlamaCppChatModel(model).llm
    assert seen == [extra_bufts]
