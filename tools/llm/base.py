"""The chat-model contract every backend follows, and the per-thread cost record of its last call.

Backends live one per module beside this one (`tools.llm.llama_cpp`, `.openai`, ...); nothing here
imports a model library.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, runtime_checkable

__all__ = ["ChatModel", "GenerationStats", "Message", "StatsRecorder", "yes_probability"]

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: `name`, and the reply to `messages` whole (`generate`) or in pieces (`stream`).
    With `json_schema` the reply is one JSON object following it (constrained where the backend can)."""

    name: str

    def generate(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> str: ...

    def stream(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
               json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> Iterator[str]: ...


@dataclass
class GenerationStats:
    """What the last call on this thread cost. Backends fill it where they can (`llm.last_stats()`)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_s: float = 0.0  # time to the first token
    decode_s: float = 0.0  # first token to the last
    cached_prompt_tokens: int = 0  # prompt prefix not prefilled: still in the KV cache, or restored (llama.cpp)
    restored_prompt_tokens: int = 0  # of those, restored from a saved prefix state (tools.llm.kv_states)


class StatsRecorder:
    """Base of a backend that reports `last_stats()`: the `GenerationStats` of the last call made on
    the calling thread (one model serves several threads, each reading its own call's cost)."""

    def last_stats(self) -> GenerationStats:
        return getattr(self._stats_local(), "stats", GenerationStats())

    def record_stats(self, stats: GenerationStats) -> None:
        """Called by the backend at the end of each call."""
        self._stats_local().stats = stats

    def _stats_local(self) -> threading.local:
        # created on first use, so subclasses (dataclasses among them) need no __init__ call
        return self.__dict__.setdefault("_stats_tls", threading.local())


def yes_probability(llm: ChatModel, messages: list[Message]) -> float:
    """P(yes) for a yes/no question: logits where the backend exposes them, else the text answer."""
    fn = getattr(llm, "yes_probability", None)
    if callable(fn):
        return float(fn(messages))
    reply = llm.generate(messages, max_tokens=3, temperature=0.0).strip().lower()
    return 1.0 if reply.startswith(("yes", "是", "y")) else 0.0
