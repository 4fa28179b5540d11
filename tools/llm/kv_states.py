"""llama.cpp KV-cache snapshots, and a byte-bounded store of them keyed by the tokens they hold.

llama.cpp keeps one KV cache: the planner's system prompt, each RAG prompt (per language and mode)
and the answer composer's evict each other, so a chat that moves between them prefills a fixed
prefix again every time it comes back (seconds on a small CPU). `PrefixStates` keeps a snapshot
of each fixed prefix; `LlamaCppChatModel` restores the longest one a new prompt starts with (a
memory copy) instead of prefilling it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from tools.llm.base import Message

__all__ = [
    "MIN_PREFIX_TOKENS",
    "KVSnapshot",
    "PrefixStates",
    "common_prefix",
    "held_tokens",
    "prefix_marks",
    "restore_state",
    "save_state",
]


@dataclass(frozen=True)
class KVSnapshot:
    """The KV cache of sequence 0 (`size` bytes of `data`) holding exactly `tokens`."""

    tokens: tuple[int, ...]
    data: Any  # a ctypes byte array (or any object for tests)
    size: int


class PrefixStates:
    """Snapshots by the tokens they hold, least recently used dropped first, at most `budget_bytes`
    in all. Not thread-safe: the chat model calls it under its generation lock."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = max(0, int(budget_bytes))
        self._items: OrderedDict[tuple[int, ...], KVSnapshot] = OrderedDict()
        self.used_bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, tokens: Sequence[int]) -> bool:
        return tuple(tokens) in self._items

    def put(self, snap: KVSnapshot) -> bool:
        """Keep `snap` (replacing one with the same tokens); False when it is larger than the budget."""
        if not snap.tokens or snap.size > self.budget_bytes:
            return False
        old = self._items.pop(snap.tokens, None)
        if old is not None:
            self.used_bytes -= old.size
        while self._items and self.used_bytes + snap.size > self.budget_bytes:
            _, dropped = self._items.popitem(last=False)
            self.used_bytes -= dropped.size
        self._items[snap.tokens] = snap
        self.used_bytes += snap.size
        return True

    def longest_prefix_of(self, tokens: Sequence[int]) -> KVSnapshot | None:
        """The stored snapshot with the most tokens that `tokens` starts with (marked as used)."""
        best: KVSnapshot | None = None
        for key, snap in self._items.items():
            if (
                len(key) <= len(tokens)
                and (best is None or len(key) > len(best.tokens))
                and tuple(tokens[: len(key)]) == key
            ):
                best = snap
        if best is not None:
            self._items.move_to_end(best.tokens)
        return best


def save_state(llm: Any) -> KVSnapshot:
    """A copy of `llm`'s KV cache (sequence 0) and the tokens it holds. The caller holds the
    generation lock."""
    import ctypes

    import llama_cpp

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    buf = (ctypes.c_uint8 * max(1, size))()
    n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0) if size else 0
    return KVSnapshot(tuple(held_tokens(llm)), buf, int(n))


def held_tokens(llm: Any) -> list[int]:
    """The tokens whose KV entries llama.cpp currently holds."""
    return [int(t) for t in llm._input_ids[: llm.n_tokens]]


def restore_state(llm: Any, snap: KVSnapshot) -> int:
    """Put `snap` back as `llm`'s KV cache; returns how many tokens it holds now (0, an empty
    cache, if llama.cpp refuses the data: the next prompt is then prefilled in full)."""
    import llama_cpp

    llm._ctx.kv_cache_seq_rm(-1, 0, -1)
    llm.n_tokens = 0
    if snap.tokens and snap.size and llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, snap.data, snap.size, 0):
        llm.input_ids[: len(snap.tokens)] = snap.tokens
        llm.n_tokens = len(snap.tokens)
    return llm.n_tokens


MIN_PREFIX_TOKENS = 64  # a shorter fixed prefix prefills in under a second: not worth a snapshot


def prefix_marks(
    messages: list[Message], tokens: list[int], tokenize: Callable[[list[Message]], list[int]]
) -> list[int]:
    """Token counts at which `tokens` (the rendered `messages`) end a fixed prefix: after the
    system message, and after everything before the last message (system prompt plus worked
    examples), each when it holds at least MIN_PREFIX_TOKENS. `tokenize` renders a message list."""
    cuts = [1] if messages and messages[0].get("role") == "system" else []
    cuts += [len(messages) - 1] if len(messages) > 2 else []
    marks = set()
    for cut in cuts:
        prefix = tokenize(messages[:cut])
        if MIN_PREFIX_TOKENS <= len(prefix) < len(tokens) and tokens[: len(prefix)] == prefix:
            marks.add(len(prefix))
    return sorted(marks)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
