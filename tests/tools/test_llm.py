"""Chat-model interface: registry, shared lazy instances, llama.cpp locking, the scripted fake."""

from __future__ import annotations

import threading
import time

import pytest

from polymodal.config import LLMConfig
from polymodal.errors import ConfigError
from tools import llm as llm_mod
from tools.llm import (
    BACKENDS,
    ChatModel,
    FakeChatModel,
    LlamaCppChatModel,
    get_chat_model,
    register_backend,
    yes_probability,
)


def test_fake_replies_in_order_and_records_calls():
    fake = FakeChatModel(["one", lambda msgs: msgs[-1]["content"].upper()])
    assert isinstance(fake, ChatModel)
    assert fake.generate([{"role": "user", "content": "a"}], max_tokens=5) == "one"
    assert "".join(fake.stream([{"role": "user", "content": "shout"}])) == "SHOUT"
    assert fake.calls[0]["max_tokens"] == 5 and fake.calls[1]["messages"][0]["content"] == "shout"
    with pytest.raises(AssertionError):
        fake.generate([{"role": "user", "content": "x"}])


def test_fake_stream_yields_several_pieces():
    pieces = list(FakeChatModel(default="a b c d e f").stream([{"role": "user", "content": "q"}]))
    assert len(pieces) > 3 and "".join(pieces) == "a b c d e f"


def test_registry_names_every_backend():
    assert {"llama_cpp", "openai", "transformers", "fake"} <= set(BACKENDS)


def test_get_chat_model_is_shared_per_config_and_loads_nothing():
    a = get_chat_model(LLMConfig(backend="fake"))
    b = get_chat_model(LLMConfig(backend="fake"))
    c = get_chat_model(LLMConfig(backend="fake", max_tokens=7))
    assert a is b and a is not c
    default = get_chat_model(LLMConfig(model="/nonexistent/model.gguf"))
    assert isinstance(default, LlamaCppChatModel) and default._llm is None  # lazy: no load yet


def test_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown LLM backend"):
        get_chat_model(LLMConfig(backend="nope"))
    with pytest.raises(ConfigError, match="cannot import"):
        get_chat_model(LLMConfig(backend="no_such_module_xyz:Model"))


class DottedModel(FakeChatModel):
    @classmethod
    def from_config(cls, cfg):
        return cls(default=f"dotted {cfg.model}")


def test_dotted_path_escape_hatch_and_register():
    m = get_chat_model(LLMConfig(backend=f"{__name__}:DottedModel", model="m1"))
    assert m.generate([{"role": "user", "content": "x"}]) == "dotted m1"
    register_backend("scripted-test", lambda cfg, cache: FakeChatModel(default="registered"))
    try:
        assert get_chat_model(LLMConfig(backend="scripted-test")).generate([]) == "registered"
    finally:
        BACKENDS.pop("scripted-test")


def test_yes_probability_falls_back_to_text():
    assert yes_probability(FakeChatModel(["Yes."]), []) == 1.0
    assert yes_probability(FakeChatModel(["no"]), []) == 0.0


class _FakeLlama:
    """Stands in for llama_cpp.Llama: counts concurrent generations."""

    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.n_tokens = 0
        self._input_ids = []
        self.guard = threading.Lock()

    def create_chat_completion(self, messages, stream, **kw):
        assert stream
        with self.guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for tok in ["Hel", "lo", "!"]:
                time.sleep(0.01)
                yield {"choices": [{"delta": {"content": tok}}]}
            self._input_ids = [1, 2, 3, 4, 5, 6]
            self.n_tokens = 6
        finally:
            with self.guard:
                self.active -= 1
        self.kw = kw


class _CountingLlama(LlamaCppChatModel):
    loads = 0

    def _load(self):
        type(self).loads += 1
        time.sleep(0.2)
        return _FakeLlama()


def test_llama_loads_once_and_serialises_generation():
    model = _CountingLlama("unused.gguf")
    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(model.generate([{"role": "user", "content": "q"}])))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _CountingLlama.loads == 1
    assert out == ["Hello!"] * 4
    assert model.llm.max_active == 1
    assert model.last_stats().completion_tokens == 0  # stats are per thread: this one ran nothing
    model.generate([{"role": "user", "content": "q"}])
    stats = model.last_stats()
    assert stats.completion_tokens == 3 and stats.prompt_tokens == 3


def test_llama_request_kwargs_carry_schema_and_greedy():
    model = _CountingLlama("unused.gguf")
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    model.generate([{"role": "user", "content": "q"}], json_schema=schema, stop=["\n\n"], max_tokens=9)
    kw = model.llm.kw
    assert kw["response_format"] == {"type": "json_object", "schema": schema}
    assert kw["top_k"] == 1 and kw["stop"] == ["\n\n"] and kw["max_tokens"] == 9


def test_llama_missing_file_is_model_unavailable():
    pytest.importorskip("llama_cpp")
    from polymodal.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="not found"):
        LlamaCppChatModel("/nonexistent/x.gguf").generate([{"role": "user", "content": "q"}])


def test_n_threads_zero_means_all_cores(monkeypatch):
    monkeypatch.setattr(llm_mod.os, "cpu_count", lambda: 7)
    assert LlamaCppChatModel("x.gguf", n_threads=0).n_threads == 7
    assert LlamaCppChatModel("x.gguf", n_threads=2).n_threads == 2
