"""Chat models: one small contract (`base`), one backend per module, backends by name (`registry`).

    llm = get_chat_model(config.llm, config.paths.cache())   # shared per config; loads on first use
    text = llm.generate([{"role": "user", "content": "hi"}], max_tokens=64)
    for piece in llm.stream(messages): ...
    plan_json = llm.generate(messages, json_schema=SCHEMA)   # constrained JSON output

Names load on first access: `import tools.llm` imports no model library (llama_cpp, torch,
transformers, langchain).
"""

from __future__ import annotations

from polymodal.lazy import lazy_exports as _lazy_exports

__all__ = [
    "BACKENDS",
    "Capabilities",
    "CapableChatModel",
    "ChatModel",
    "FakeChatModel",
    "GenerationStats",
    "LlamaCppChatModel",
    "Message",
    "OpenAIChatModel",
    "PolymodalChatModel",
    "RayServeChatModel",
    "StatsRecorder",
    "TransformersChatModel",
    "get_chat_model",
    "register_backend",
    "yes_probability",
]

_WHERE = {
    "Capabilities": "tools.llm.base",
    "CapableChatModel": "tools.llm.base",
    "ChatModel": "tools.llm.base",
    "GenerationStats": "tools.llm.base",
    "Message": "tools.llm.base",
    "StatsRecorder": "tools.llm.base",
    "yes_probability": "tools.llm.base",
    "BACKENDS": "tools.llm.registry",
    "get_chat_model": "tools.llm.registry",
    "register_backend": "tools.llm.registry",
    "FakeChatModel": "tools.llm.fake",
    "LlamaCppChatModel": "tools.llm.llama_cpp",
    "OpenAIChatModel": "tools.llm.openai",
    "TransformersChatModel": "tools.llm.transformers",
    "PolymodalChatModel": "tools.llm.langchain",
    "RayServeChatModel": "tools.llm.ray_handle",
}

__getattr__, __dir__ = _lazy_exports("tools.llm", _WHERE, globals(), __all__)
