"""Chat models: one small interface, backends by name, a scripted fake for tests.

    llm = get_chat_model(config.llm)          # shared instance per config; loads on first use
    text = llm.generate([{"role": "user", "content": "hi"}], max_tokens=64)
    for piece in llm.stream(messages): ...
    plan_json = llm.generate(messages, json_schema=SCHEMA)   # constrained JSON output

Backends: "llama_cpp" (offline default GGUF), "openai" (any OpenAI-compatible HTTP endpoint),
"transformers" (hub id or local folder), "fake" (FakeChatModel), or "pkg.mod:Class".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

__all__ = ["ChatModel", "FakeChatModel", "Message"]

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def generate(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> str: ...

    def stream(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
               json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> Iterator[str]: ...


Reply = str | Callable[[list[Message]], str]


@dataclass
class FakeChatModel:
    """Deterministic scripted model: replies are taken in order (a string, or a function of the
    messages). Every call is recorded in `calls` so tests can assert on prompts."""

    replies: list[Reply] = field(default_factory=list)
    name: str = "fake-chat"
    default: Reply | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def _next(self, messages: list[Message]) -> str:
        with self._lock:
            if self.replies:
                reply = self.replies.pop(0)
            elif self.default is not None:
                reply = self.default
            else:
                raise AssertionError("FakeChatModel ran out of scripted replies")
        return reply(messages) if callable(reply) else reply

    def generate(self, messages: list[Message], **kwargs: Any) -> str:
        self.calls.append({"messages": [dict(m) for m in messages], **kwargs})
        return self._next(messages)

    def stream(self, messages: list[Message], **kwargs: Any) -> Iterator[str]:
        text = self.generate(messages, **kwargs)
        # yield word-ish pieces so consumers see several tokens
        piece = ""
        for ch in text:
            piece += ch
            if ch.isspace() or len(piece) >= 4:
                yield piece
                piece = ""
        if piece:
            yield piece
