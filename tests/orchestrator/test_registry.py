"""The default tool registry: lazy imports, missing tools reported, constructor conventions."""

from __future__ import annotations

import sys
import types

from orchestrator import registry
from polymodal.errors import ModelUnavailable
from tools.base import Tool


def _module(name, cls):
    mod = types.ModuleType(name)
    cls.__module__ = name
    setattr(mod, cls.__name__, cls)
    return mod


def test_missing_module_and_missing_weights_are_reported_not_fatal(monkeypatch):
    class Good(Tool):
        name = "good"
        description = "works"

        def __init__(self, config=None, models=None):
            super().__init__()
            self.config, self.models = config, models

        @classmethod
        def from_config(cls, config, models=None):
            return cls(config, models)

        def run(self, q: str) -> str:
            return q

    class NoWeights(Tool):
        name = "noweights"
        description = "needs weights"

        @classmethod
        def from_config(cls, config, models=None):
            raise ModelUnavailable("no diffusion weights configured")

        def run(self, q: str) -> str:
            return q

    monkeypatch.setitem(sys.modules, "fake_good_tool", _module("fake_good_tool", Good))
    monkeypatch.setitem(sys.modules, "fake_noweights_tool", _module("fake_noweights_tool", NoWeights))
    monkeypatch.setattr(
        registry,
        "DEFAULT_TOOLS",
        {
            "good": "fake_good_tool",
            "noweights": "fake_noweights_tool",
            "absent": "no_such_module_here",
            "wrong": "fake_good_tool",
        },
    )
    tools, problems = registry.default_tools(config="CFG", models="MM")
    assert [t.name for t in tools] == ["good"] and tools[0].config == "CFG" and tools[0].models == "MM"
    reasons = {p.tool: p.reason for p in problems}
    assert reasons["noweights"] == "no diffusion weights configured"
    assert "no_such_module_here" in reasons["absent"]
    assert "defines no tool named 'wrong'" in reasons["wrong"]


def test_as_tool_accepts_functions():
    def f(x: int) -> int:
        """Double it."""
        return 2 * x

    tool = registry.as_tool(f)
    assert tool.name == "f" and tool({"x": 2}) == 4
