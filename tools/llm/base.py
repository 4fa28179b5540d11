"""The chat-model contract every backend follows, the optional capabilities a backend may add (what
RAG reads from logits, extractive decoding, prefix warm-up, token counts), and the per-thread cost
record of the last call. Backends live one per module beside this one; nothing here imports a model
library.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

from polymodal import tracing

__all__ = [
    "CapableChatModel",
    "Capabilities",
    "ChatModel",
    "GenerationStats",
    "Message",
    "StatsRecorder",
    "yes_probability",
]

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: `name`, and the reply to `messages` whole (`generate`) or in pieces (`stream`).
    With `json_schema` the reply is one JSON object following it (constrained where the backend can)."""

    name: str

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> str: ...

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]: ...


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
        """Called by the backend at the end of each call; the call becomes a `polymodal.llm` span."""
        self._stats_local().stats = stats
        tracing.llm_call(str(getattr(self, "name", "")), stats)

    def _stats_local(self) -> threading.local:
        # created on first use, so subclasses (dataclasses among them) need no __init__ call
        return self.__dict__.setdefault("_stats_tls", threading.local())


@runtime_checkable
class CapableChatModel(ChatModel, Protocol):
    """A chat model with every optional capability (llama.cpp has them all). A backend may offer any
    subset, each by defining the method with this signature; `Capabilities.of` says which it has."""

    def first_token_probability(self, messages: list[Message], texts: list[str]) -> float:
        """P(the reply starts with one of `texts`), read from the first token's distribution."""

    def yes_probability(self, messages: list[Message], *, keep_cache: bool = False) -> float:
        """P("yes") against P("no") as the next token. keep_cache: leave the KV cache as it was."""

    def stream_copy(
        self, messages: list[Message], sources: list[str], *, anchored: Sequence[str] = (), max_tokens: int = 64
    ) -> Iterator[str]:
        """Extractive decoding: a verbatim span of one of `sources` (then an optional citation like
        "[2]"), or one of `anchored` from its start."""

    def warm(self, prefix: list[Message]) -> None:
        """Prefill a fixed prompt prefix ahead of the first request that starts with it."""

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is for this model."""

    def last_stats(self) -> GenerationStats:
        """What the last call on this thread cost."""


@dataclass(frozen=True)
class Capabilities:
    """Which of `CapableChatModel`'s optional methods one chat model has, looked up once: each field
    is the bound method, or None when the backend lacks it (the caller then does without)."""

    first_token_probability: Callable[[list[Message], list[str]], float] | None = None
    yes_probability: Callable[..., float] | None = None
    stream_copy: Callable[..., Iterator[str]] | None = None
    warm: Callable[[list[Message]], None] | None = None
    count_tokens: Callable[[str], int] | None = None
    last_stats: Callable[[], GenerationStats] | None = None

    @classmethod
    def of(cls, llm: ChatModel) -> "Capabilities":
        found = {f.name: getattr(llm, f.name, None) for f in fields(cls)}
        return cls(**{name: method for name, method in found.items() if callable(method)})


def yes_probability(llm: ChatModel, messages: list[Message], capabilities: Capabilities | None = None) -> float:
    """P(yes) for a yes/no question: from the logits where the backend offers `yes_probability`, else
    from the text answer. `capabilities`: `llm`'s, when the caller has looked them up already."""
    ask = (capabilities or Capabilities.of(llm)).yes_probability
    if ask is not None:
        return float(ask(messages))
    reply = llm.generate(messages, max_tokens=3, temperature=0.0).strip().lower()
    return 1.0 if reply.startswith(("yes", "是", "y")) else 0.0
