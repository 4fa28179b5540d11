from dataclasses import dataclass
from typing import Literal

import pytest

from polymodal.errors import Cancelled, InputError
from tools.base import FunctionTool, Tool, ToolContext, schema_from_signature, to_plain


@dataclass
class Echo:
    text: str
    times: int


class EchoTool(Tool):
    name = "echo"
    description = "Repeat text."

    def __init__(self):
        super().__init__()
        self.setups = 0

    def setup(self):
        self.setups += 1

    def run(
        self,
        text: str,
        times: int = 1,
        mode: Literal["plain", "loud"] = "plain",
        tags: list[str] | None = None,
        *,
        context: ToolContext | None = None,
    ) -> Echo:
        """Echo.

        Args:
            text: what to say
            times: how often
        """
        context.progress(0.5, "half way")
        context.check_cancelled()
        return Echo(text.upper() if mode == "loud" else text, times)


def test_schema_is_derived_from_type_hints_and_docstring():
    s = EchoTool().input_schema
    assert s["required"] == ["text"]
    assert s["properties"]["text"] == {"type": "string", "description": "what to say"}
    assert s["properties"]["times"] == {"type": "integer", "description": "how often", "default": 1}
    assert s["properties"]["mode"]["enum"] == ["plain", "loud"]
    assert s["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert "context" not in s["properties"] and s["additionalProperties"] is False


def test_call_validates_sets_up_once_and_reports_progress():
    tool = EchoTool()
    seen = []
    ctx = ToolContext(progress=lambda f, m: seen.append((f, m)))
    assert tool({"text": "hi", "times": "3", "mode": "loud"}, ctx) == Echo("HI", 3)
    tool({"text": "again"})
    assert tool.setups == 1 and seen == [(0.5, "half way")]


@pytest.mark.parametrize(
    "args,match",
    [
        ({}, "missing required"),
        ({"text": 3}, "must be a string"),
        ({"text": "x", "mode": "whisper"}, "must be one of"),
        ({"text": "x", "colour": "red"}, "unknown argument"),
        ({"text": "x", "times": "many"}, "must be an integer"),
    ],
)
def test_bad_arguments_are_one_line_input_errors(args, match):
    with pytest.raises(InputError, match=match):
        EchoTool()(args)


def test_cancellation_between_steps():
    ctx = ToolContext()
    ctx.cancel.set()
    with pytest.raises(Cancelled):
        EchoTool()({"text": "x"}, ctx)


def test_function_tool_from_a_typed_function():
    def add(a: int, b: int = 2) -> int:
        """Add two numbers.

        Args:
            a: first
        """
        return a + b

    tool = FunctionTool(add)
    assert tool.name == "add" and tool.description == "Add two numbers."
    assert tool({"a": 1}) == 3
    assert tool.spec()["parameters"]["required"] == ["a"]


def test_untyped_parameter_is_a_programming_error():
    def f(x):
        return x

    with pytest.raises(TypeError):
        schema_from_signature(f)


def test_langchain_tool_plugs_in():
    from langchain_core.tools import tool as lc_tool

    from tools.base import LangChainTool

    @lc_tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    t = LangChainTool(multiply)
    assert t.name == "multiply" and set(t.input_schema["required"]) == {"a", "b"}
    assert t({"a": 6, "b": 7}) == 42
    with pytest.raises(InputError):
        t({"a": 6})


def test_to_plain_handles_records_paths_and_numpy(tmp_path):
    import numpy as np

    assert to_plain({"e": Echo("a", 1), "p": tmp_path, "n": np.float32(1.5), "a": np.arange(2)}) == {
        "e": {"text": "a", "times": 1},
        "p": str(tmp_path),
        "n": 1.5,
        "a": [0, 1],
    }


def test_async_only_langchain_tool_runs_through_ainvoke():
    import asyncio

    from langchain_core.tools import StructuredTool

    from tools.base import LangChainTool

    async def add(a: int, b: int) -> int:
        """Add two integers."""
        await asyncio.sleep(0)
        return a + b

    lc = StructuredTool.from_function(coroutine=add, name="add", description="Add two integers.")
    with pytest.raises(NotImplementedError):
        lc.invoke({"a": 1, "b": 2})  # the case being fixed: no sync implementation
    t = LangChainTool(lc)
    assert t({"a": 2, "b": 3}) == 5

    async def from_async_code() -> int:  # a sync call made while an event loop runs in this thread
        return t({"a": 4, "b": 5})

    assert asyncio.run(from_async_code()) == 9


def test_async_only_langchain_tool_runs_as_a_plan_step():
    from langchain_core.tools import tool as lc_tool

    from orchestrator.plan import Plan, PlanStep
    from orchestrator.testing import fake_agent

    @lc_tool
    async def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    agent = fake_agent()
    agent.add_tool(shout)
    (res,) = agent.executor.run(Plan([PlanStep(1, "shout", {"text": "hi"})]))
    assert res.ok and res.value == "HI"
