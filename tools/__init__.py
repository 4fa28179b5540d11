"""tools: one job each, on the contract in `tools.base` (name, description, schema from type hints, run).

Names load on first access, so `import tools` stays light (no torch, diffusers, llama_cpp).
"""

from __future__ import annotations

from polymodal.lazy import lazy_exports as _lazy_exports

__all__ = [
    "ChatModel",
    "Citation",
    "Cues",
    "EdgeQueryResult",
    "EdgeQueryTool",
    "FakeChatModel",
    "FunctionTool",
    "GenerateImageResult",
    "GenerateImageTool",
    "ImageSearchResult",
    "ImageSearchTool",
    "LangChainTool",
    "PlanExample",
    "RagAnswer",
    "RagAnswerTool",
    "Tool",
    "ToolContext",
    "ToolResult",
    "get_chat_model",
]

_WHERE = {
    "Tool": "tools.base",
    "ToolContext": "tools.base",
    "ToolResult": "tools.base",
    "Cues": "tools.base",
    "PlanExample": "tools.base",
    "FunctionTool": "tools.base",
    "LangChainTool": "tools.base",
    "ChatModel": "tools.llm.base",
    "FakeChatModel": "tools.llm.fake",
    "get_chat_model": "tools.llm.registry",
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


__getattr__, __dir__ = _lazy_exports("tools", _WHERE, globals(), __all__)
