"""tools: one job each, on the contract in `tools.base` (name, description, schema from type hints, run).

Names load on first access, so `import tools` stays light (no torch, diffusers, llama_cpp).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ChatModel",
    "Citation",
    "EdgeQueryResult",
    "EdgeQueryTool",
    "FakeChatModel",
    "FunctionTool",
    "GenerateImageResult",
    "GenerateImageTool",
    "ImageSearchResult",
    "ImageSearchTool",
    "LangChainTool",
    "RagAnswer",
    "RagAnswerTool",
    "Tool",
    "ToolContext",
    "get_chat_model",
]

_WHERE = {
    "Tool": "tools.base",
    "ToolContext": "tools.base",
    "FunctionTool": "tools.base",
    "LangChainTool": "tools.base",
    "ChatModel": "tools.llm",
    "FakeChatModel": "tools.llm",
    "get_chat_model": "tools.llm",
    "RagAnswerTool": "tools.rag",
    "RagAnswer": "tools.rag",
    "Citation": "tools.rag",
    "ImageSearchTool": "tools.image_search",
    "ImageSearchResult": "tools.image_search",
    "GenerateImageTool": "tools.generate",
    "GenerateImageResult": "tools.generate",
    "EdgeQueryTool": "tools.edge_query",
    "EdgeQueryResult": "tools.edge_query",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tools' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
