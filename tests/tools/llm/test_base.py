"""The contract shared by every backend, and the package's light import."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from tools.llm.base import GenerationStats, StatsRecorder, yes_probability
from tools.llm.fake import FakeChatModel

HEAVY = ("llama_cpp", "torch", "transformers", "langchain", "langchain_core")
ROOT = Path(__file__).resolve().parents[3]  # `python -c` imports from its working directory first
BACKEND_MODULES = ("tools.llm.llama_cpp", "tools.llm.openai", "tools.llm.transformers", "tools.llm.langchain")


def test_yes_probability_falls_back_to_text():
    assert yes_probability(FakeChatModel(["Yes."]), []) == 1.0
    assert yes_probability(FakeChatModel(["no"]), []) == 0.0


def test_stats_are_kept_per_thread():
    recorder = StatsRecorder()
    recorder.record_stats(GenerationStats(prompt_tokens=5))
    seen = []
    worker = threading.Thread(target=lambda: seen.append(recorder.last_stats()))
    worker.start()
    worker.join()
    assert recorder.last_stats().prompt_tokens == 5 and seen == [GenerationStats()]


def test_import_and_the_default_names_load_no_backend_module():
    code = ("import sys, tools.llm; from tools.llm import ChatModel, FakeChatModel, get_chat_model; "
            "from tools import ChatModel, FakeChatModel, get_chat_model; print(' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120, cwd=ROOT)
    loaded = set(out.stdout.split())
    assert "tools.llm.registry" in loaded  # the measurement itself works
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in BACKEND_MODULES) == []
