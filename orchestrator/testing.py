"""An `Agent` over the fake tools (`tools.testing`) and a scripted LLM, for tests and demos:

agent = fake_agent(llm=FakeChatModel(default="ok"))
"""

from __future__ import annotations

from typing import Any

from tools.testing import (  # noqa: F401 - re-exported for tests and benchmarks
    BrokenGenerateTool,
    FakeEdgeQueryTool,
    FakeGenerateResult,
    FakeGenerateTool,
    FakeImageHit,
    FakeImageResult,
    FakeImageSearchTool,
    FakeRagTool,
    FakeReading,
    fake_tools,
)

__all__ = ["fake_agent", "fake_tools"]


def fake_agent(llm: Any = None, tools: list[Any] | None = None, embedder: Any = "hash", **kwargs: Any):
    """An `Agent` over the fake tools and a scripted LLM (default: a FakeChatModel answering "ok")."""
    from orchestrator.agent import Agent
    from tools.llm import FakeChatModel

    return Agent(
        tools if tools is not None else fake_tools(),
        llm=llm or FakeChatModel(default="ok"),
        embedder=embedder,
        **kwargs,
    )
