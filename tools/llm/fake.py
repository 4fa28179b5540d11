"""A scripted, deterministic chat model: tests of the planner, RAG and the app run without a model."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from polymodal.cancel import check_cancelled
from tools.llm.base import GenerationStats, Message, StatsRecorder

__all__ = ["FakeChatModel", "ProbeReply", "probe_chat_model"]

Reply = str | Callable[[list[Message]], str]


@dataclass
class FakeChatModel(StatsRecorder):
    """Replies are taken in order (a string, or a function of the messages), then `default`.
    Every call is recorded in `calls` so tests can assert on prompts."""

    replies: list[Reply] = field(default_factory=list)
    name: str = "fake-chat"
    default: Reply | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, cache_dir: Any = None) -> "FakeChatModel":
        return cls(default="This is a scripted reply.")

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
        text = self._next(messages)
        prompt = sum(len(m.get("content", "")) for m in messages) // 4
        self.record_stats(GenerationStats(prompt_tokens=prompt, completion_tokens=len(_pieces(text))))
        return text

    def stream(self, messages: list[Message], **kwargs: Any) -> Iterator[str]:
        # word-ish pieces, so consumers see several tokens; the step's cancel token checked between them
        for piece in _pieces(self.generate(messages, **kwargs)):
            check_cancelled()
            yield piece


def _pieces(text: str) -> list[str]:
    out, piece = [], ""
    for ch in text:
        piece += ch
        if ch.isspace() or len(piece) >= 4:
            out.append(piece)
            piece = ""
    if piece:
        out.append(piece)
    return out


class ProbeReply:
    """A reply saying who answered, for tests of serving: a JSON object with this process's id, how
    many calls it was running at once (this one included), and when the call started and ended
    (`time.time()`). Each call takes `delay_s`, so calls sent together overlap unless something
    keeps them apart."""

    def __init__(self, delay_s: float = 0.3) -> None:
        self.delay_s = delay_s
        self.running = 0
        self._lock = threading.Lock()

    def __call__(self, messages: list[Message]) -> str:
        with self._lock:
            self.running += 1
            at_once = self.running
        start = time.time()
        try:
            time.sleep(self.delay_s)
        finally:
            with self._lock:
                self.running -= 1
        return json.dumps({"pid": os.getpid(), "at_once": at_once, "start": start, "end": time.time()})


def probe_chat_model(cfg: Any = None, cache_dir: Any = None) -> FakeChatModel:
    """A `FakeChatModel` answering every call with a `ProbeReply` (`[llm] backend =
    "tools.llm.fake:probe_chat_model"`)."""
    return FakeChatModel(name="fake-probe", default=ProbeReply())
