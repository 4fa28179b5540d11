"""Backends by name: the registry, shared lazy instances, the "module:Class" escape hatch."""

from __future__ import annotations

import pytest

from polymodal.config import LLMConfig
from polymodal.errors import ConfigError
from polymodal.lazy import load_once
from tools.llm.fake import FakeChatModel
from tools.llm.llama_cpp import LlamaCppChatModel
from tools.llm.registry import BACKENDS, get_chat_model, register_backend


def test_registry_names_every_backend():
    assert {"llama_cpp", "openai", "transformers", "fake"} <= set(BACKENDS)


def test_get_chat_model_is_shared_per_config_and_loads_nothing():
    a = get_chat_model(LLMConfig(backend="fake"))
    b = get_chat_model(LLMConfig(backend="fake"))
    c = get_chat_model(LLMConfig(backend="fake", max_tokens=7))
    assert a is b and a is not c
    default = get_chat_model(LLMConfig(model="/nonexistent/model.gguf"))
    assert isinstance(default, LlamaCppChatModel) and not load_once.loaded(default, "llm")  # lazy: no load yet


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
