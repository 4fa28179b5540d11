"""The contract shared by every backend, and the package's light import."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import fields
from pathlib import Path

import pytest

from tools.llm.base import Capabilities, CapableChatModel, ChatModel, GenerationStats, StatsRecorder, yes_probability
from tools.llm.fake import FakeChatModel
from tools.llm.llama_cpp import LlamaCppChatModel
from tools.llm.openai import OpenAIChatModel
from tools.llm.transformers import TransformersChatModel

HEAVY = ("llama_cpp", "torch", "transformers", "langchain", "langchain_core")
ROOT = Path(__file__).resolve().parents[3]  # `python -c` imports from its working directory first
BACKEND_MODULES = ("tools.llm.llama_cpp", "tools.llm.openai", "tools.llm.transformers", "tools.llm.langchain")


ALL = {f.name for f in fields(Capabilities)}


def test_capabilities_are_the_optional_methods_of_the_protocol():
    optional = {n for n, v in vars(CapableChatModel).items() if callable(v) and not n.startswith("_")}
    assert {f.name for f in fields(Capabilities)} == optional


@pytest.mark.parametrize(
    ("make", "offered"),
    [
        (lambda: LlamaCppChatModel("unused.gguf"), ALL),
        (lambda: FakeChatModel(), {"last_stats"}),
        (lambda: OpenAIChatModel("http://127.0.0.1:9/v1", "m"), {"last_stats"}),
        (lambda: TransformersChatModel("unused"), {"last_stats"}),
    ],
)
def test_each_backend_offers_its_capabilities_without_loading(make, offered):
    llm = make()
    found = Capabilities.of(llm)
    assert isinstance(llm, ChatModel) and isinstance(llm, CapableChatModel) == (offered == ALL)
    assert {name for name in ALL if getattr(found, name) is not None} == offered


def test_a_capability_is_the_bound_method_and_a_plain_attribute_is_none():
    class Probing(FakeChatModel):
        count_tokens = 3  # not a method: not a capability

        def first_token_probability(self, messages, texts):
            return 0.25

    found = Capabilities.of(Probing())
    assert found.first_token_probability([], ["x"]) == 0.25 and found.count_tokens is None


def test_yes_probability_reads_the_capability_when_there_is_one():
    class Judge(FakeChatModel):
        def yes_probability(self, messages):
            return 0.75

    judge = Judge()
    assert yes_probability(judge, []) == 0.75 == yes_probability(judge, [], Capabilities.of(judge))
    assert judge.calls == []  # never asked for text


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
    code = (
        "import sys, tools.llm; from tools.llm import ChatModel, FakeChatModel, get_chat_model; "
        "from tools import ChatModel, FakeChatModel, get_chat_model; print(' '.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT
    )
    loaded = set(out.stdout.split())
    assert "tools.llm.registry" in loaded  # the measurement itself works
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in BACKEND_MODULES) == []
