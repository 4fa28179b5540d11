"""The llama.cpp backend with a stand-in for llama_cpp.Llama: loads once, serialises generation,
passes the request's options through."""

from __future__ import annotations

import threading
import time

import pytest

from polymodal.cancel import CancelToken, cancel_scope
from polymodal.errors import Cancelled
from polymodal.lazy import load_once
from tools.llm import llama_cpp as llama_mod
from tools.llm.llama_cpp import LlamaCppChatModel


class _FakeLlama:
    """Stands in for llama_cpp.Llama: counts concurrent generations."""

    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.n_tokens = 0
        self._input_ids = []
        self.guard = threading.Lock()
        self.closed = False

    def close(self) -> None:
        self.closed = True

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
    threads = [
        threading.Thread(target=lambda: out.append(model.generate([{"role": "user", "content": "q"}])))
        for _ in range(4)
    ]
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


def test_unload_closes_the_model_after_the_stream_in_flight_and_the_next_call_reloads():
    model = _CountingLlama("unused.gguf")
    _CountingLlama.loads = 0
    stream = model.stream([{"role": "user", "content": "q"}])
    assert next(stream) == "Hel"  # a generation in flight holds the model
    first = model.llm
    assert model.unload() and not first.closed  # closing it now would free memory the stream still uses
    assert "".join(stream) == "lo!" and first.closed and not load_once.loaded(model, "llm")
    assert not model.unload()  # nothing loaded: nothing to free
    assert model.generate([{"role": "user", "content": "q"}]) == "Hello!" and _CountingLlama.loads == 2
    assert model.unload() and model.llm is not first


def test_llama_missing_file_is_model_unavailable():
    pytest.importorskip("llama_cpp")
    from polymodal.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="not found"):
        LlamaCppChatModel("/nonexistent/x.gguf").generate([{"role": "user", "content": "q"}])


def test_n_threads_zero_means_all_cores(monkeypatch):
    monkeypatch.setattr(llama_mod.os, "cpu_count", lambda: 7)
    assert LlamaCppChatModel("x.gguf", n_threads=0).n_threads == 7
    assert LlamaCppChatModel("x.gguf", n_threads=2).n_threads == 2


def test_stream_stops_between_tokens_once_the_steps_token_is_cancelled():
    model = _CountingLlama("unused.gguf")
    token = CancelToken()
    with cancel_scope(token):  # as Tool.__call__ sets it for the executor's step
        stream = model.stream([{"role": "user", "content": "q"}])
        assert next(stream) == "Hel"
        token.cancel("timed out after 1 s")
        with pytest.raises(Cancelled, match="timed out after 1 s"):
            next(stream)
    assert model.generate([{"role": "user", "content": "q"}]) == "Hello!"  # outside the scope: no token
