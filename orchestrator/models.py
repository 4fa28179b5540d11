"""One model manager per agent: heavy models shared across tools, loaded lazily once, kept within a
memory budget by unloading the least recently used.

    models = ModelManager(budget_mb=8192, llm_config=config.llm, cache_dir=config.paths.cache())
    llm = models.llm()                                          # the one LLM instance
    pipe = models.get("diffusion", load_pipeline, size_mb=3500, unload=free_pipeline)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

__all__ = ["ModelManager", "LoadedModel", "process_rss_mb"]

T = TypeVar("T")

LLM_SIZE_MB = 2048  # the offline Q4 1.5B model, measured ~2 GB RSS


@dataclass
class LoadedModel:
    key: str
    value: Any
    size_mb: float
    unload: Callable[[Any], None] | None
    last_used: float


class ModelManager:
    def __init__(
        self, budget_mb: float = 8192, llm_config: Any = None, cache_dir: str | Path | None = None, llm: Any = None
    ) -> None:
        self.budget_mb = budget_mb
        self.llm_config = llm_config
        self.cache_dir = cache_dir
        self._fixed_llm = llm  # an injected chat model (tests, user code) instead of the configured one
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.evictions: list[str] = []

    def get(
        self, key: str, load: Callable[[], T], size_mb: float = 0.0, unload: Callable[[T], None] | None = None
    ) -> T:
        """The model under `key`, loading it with `load()` on first use (concurrent callers wait)."""
        with self._lock:
            entry = self._models.get(key)
            if entry is not None:
                entry.last_used = time.monotonic()
                return entry.value
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._models.get(key)
                if entry is not None:
                    entry.last_used = time.monotonic()
                    return entry.value
            self._make_room(size_mb, keep=key)
            value = load()
            with self._lock:
                self._models[key] = LoadedModel(key, value, size_mb, unload, time.monotonic())
            return value

    def llm(self) -> Any:
        """The agent's one chat model (tools share it: rag answers, plans, combined answers)."""
        if self._fixed_llm is not None:
            return self._fixed_llm
        from tools.llm import get_chat_model

        return self.get(
            "llm", lambda: get_chat_model(self.llm_config, self.cache_dir), size_mb=LLM_SIZE_MB, unload=_unload_llm
        )

    def release(self, key: str) -> bool:
        with self._lock:
            entry = self._models.pop(key, None)
        if entry is None:
            return False
        if entry.unload is not None:
            entry.unload(entry.value)
        return True

    def loaded(self) -> list[tuple[str, float]]:
        """(key, size MB) of loaded models, least recently used first."""
        with self._lock:
            return [(e.key, e.size_mb) for e in sorted(self._models.values(), key=lambda e: e.last_used)]

    @property
    def used_mb(self) -> float:
        with self._lock:
            return sum(e.size_mb for e in self._models.values())

    def _make_room(self, size_mb: float, keep: str) -> None:
        while True:
            with self._lock:
                used = sum(e.size_mb for e in self._models.values())
                if used + size_mb <= self.budget_mb or not self._models:
                    return
                victim = min(
                    (e for e in self._models.values() if e.key != keep), key=lambda e: e.last_used, default=None
                )
                if victim is None:
                    return
            self.release(victim.key)
            self.evictions.append(victim.key)


def _unload_llm(model: Any) -> None:
    """Free the chat model's weights (llama.cpp: `LlamaCppChatModel.unload` closes the model and its
    context). The registry keeps the unloaded wrapper, so the next `llm()` reloads it on first use."""
    close = getattr(model, "unload", None) or getattr(model, "close", None)
    if callable(close):
        close()


def process_rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB; 0.0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
