"""The orchestrator knows tools only through the contract in `tools.base`: a tool defined here,
in this file alone, is routed to by the fast router and planned by the LLM planner."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.registry import DEFAULT_TOOLS
from orchestrator.testing import fake_agent, fake_tools
from tools.base import Cues, PlanExample, Tool, ToolResult
from tools.llm import FakeChatModel

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Forecast(ToolResult):
    city: str
    sky: str

    def summary(self) -> str:
        return f"{self.city}: {self.sky}"


class WeatherTool(Tool):
    name = "weather"
    description = "Tell the weather forecast for a city: sky, rain, temperature."
    examples = ("what's the weather like in Lisbon tomorrow?", "明天杭州的天气怎么样？")
    cues = Cues(patterns=(re.compile(r"\b(weather|forecast)\b", re.I), re.compile(r"天气(预报)?")))
    plan_examples = (PlanExample("Will it rain in Oslo on Sunday?", (("weather", {"main": "Oslo"}),)),)

    def run(self, city: str) -> Forecast:
        """Args:
        city: the city to forecast
        """
        return Forecast(city, "sunny")


def test_router_routes_to_a_tool_it_has_never_heard_of():
    agent = fake_agent(tools=[*fake_tools(), WeatherTool()])
    plan = agent.plan("weather forecast for Lisbon, please")
    assert [s.tool for s in plan.steps] == ["weather"]
    assert plan.source == "router"
    result = agent.run("weather forecast for Lisbon, please")
    assert "sunny" in result.answer


def test_llm_planner_sees_the_tool_and_its_worked_plan_and_plans_it():
    llm = FakeChatModel(replies=[json.dumps({"steps": [{"tool": "weather", "city": "Oslo"}]})])
    agent = fake_agent(llm=llm, tools=[*fake_tools(), WeatherTool()], use_router=False)
    plan = agent.plan("should I pack an umbrella for Oslo?")
    assert [(s.tool, s.args) for s in plan.steps] == [("weather", {"city": "Oslo"})]
    system = llm.calls[0]["messages"][0]["content"]
    assert "- weather(city: string)" in system and WeatherTool.description in system
    assert 'Request: Will it rain in Oslo on Sunday?\nPlan: {"steps": [{"tool": "weather", "city": "Oslo"}]}' in system


def test_a_tool_result_is_read_through_the_result_protocol():
    agent = fake_agent(tools=[WeatherTool()], use_router=True)
    step = agent.run("what is the weather in Lisbon").steps[0]
    assert step.ok and step.summary() == f"{step.args['city']}: sunny" and step.citations == []


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_orchestrator_module_names_a_tool():
    names = set(DEFAULT_TOOLS)
    registry = ROOT / "orchestrator" / "registry.py"
    found = [
        f"{p.relative_to(ROOT)}:{line}: {value!r}"
        for p in sorted((ROOT / "orchestrator").rglob("*.py"))
        if p != registry
        for line, value in _string_constants(p)
        if value in names
    ]
    assert found == []
