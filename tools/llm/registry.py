"""Chat backends by name, and one shared chat model per `[llm]` config.

    llm = get_chat_model(config.llm, config.paths.cache())   # shared per config; loads on first use

`[llm] backend` is a name in `BACKENDS` ("llama_cpp", the offline default; "openai", any
OpenAI-compatible endpoint; "transformers"; "fake"; "ray-serve", the LLM `polymodal serve-llm` put on
Ray, through a Serve handle) or "package.module:Class" for a user's class (built with
`Class.from_config(llm_config)` when it has one, else `Class(llm_config)`).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any, Callable

from polymodal.errors import ConfigError
from polymodal.lazy import resolve
from tools.llm.base import ChatModel

__all__ = ["BACKENDS", "Factory", "get_chat_model", "register_backend"]

Factory = Callable[[Any, Path | None], ChatModel]  # (llm_config, cache_dir) -> a chat model, not loaded yet


def _from_config(ref: str) -> Factory:
    """A factory building the class `ref` names with its `from_config(cfg, cache_dir)`; the backend's
    module is imported only when the backend is used."""

    def factory(cfg: Any, cache_dir: Path | None) -> ChatModel:
        return resolve(ref, "LLM backend").from_config(cfg, cache_dir)

    return factory


BACKENDS: dict[str, Factory] = {
    "llama_cpp": _from_config("tools.llm.llama_cpp:LlamaCppChatModel"),
    "openai": _from_config("tools.llm.openai:OpenAIChatModel"),
    "transformers": _from_config("tools.llm.transformers:TransformersChatModel"),
    "fake": _from_config("tools.llm.fake:FakeChatModel"),
    "ray-serve": _from_config("tools.llm.ray_handle:RayServeChatModel"),
}


def register_backend(name: str, factory: Factory) -> None:
    """Add a backend: `factory(llm_config, cache_dir) -> ChatModel`."""
    BACKENDS[name] = factory


_instances: dict[tuple, ChatModel] = {}
_instances_lock = threading.Lock()


def get_chat_model(llm_config: Any = None, cache_dir: str | Path | None = None) -> ChatModel:
    """The chat model for an `LLMConfig`: one shared instance per config per process.

    Nothing loads here: weights load on the first generate/stream call.
    """
    if llm_config is None:
        from polymodal.config import LLMConfig

        llm_config = LLMConfig()
    cache = Path(cache_dir) if cache_dir else None
    key = _config_key(llm_config, cache)
    with _instances_lock:
        if key not in _instances:
            _instances[key] = _create(llm_config, cache)
        return _instances[key]


def _config_key(cfg: Any, cache_dir: Path | None) -> tuple:
    data = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg))
    return tuple(sorted((k, repr(v)) for k, v in data.items())) + (("cache_dir", str(cache_dir)),)


def _create(cfg: Any, cache_dir: Path | None) -> ChatModel:
    backend = cfg.backend
    if backend in BACKENDS:
        return BACKENDS[backend](cfg, cache_dir)
    if ":" in backend:
        cls = resolve(backend, "LLM backend")
        return cls.from_config(cfg) if hasattr(cls, "from_config") else cls(cfg)
    raise ConfigError(f"unknown LLM backend '{backend}': use one of {', '.join(BACKENDS)} or 'pkg.module:Class'")
