"""Tools of an MCP server the test starts (a tiny MCPServer script) as polymodal tools: the Tool
contract, a call, an MCP error result, the planner and the router choosing one, a server that is down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.prompts import plan_messages
from orchestrator.registry import default_tools
from orchestrator.testing import fake_agent
from polymodal.config import Config, McpServerConfig
from polymodal.errors import InputError, ToolError
from tools.llm import FakeChatModel
from tools.mcp_client import McpTool, mcp_tools

SERVER = Path(__file__).resolve().parents[1] / "orchestrator" / "serve" / "weather_mcp.py"


@pytest.fixture(scope="module")
def weather() -> McpServerConfig:
    return McpServerConfig(name="weather", command=sys.executable, args=[str(SERVER)])


@pytest.fixture(scope="module")
def forecast(weather) -> McpTool:
    (tool,) = mcp_tools(weather)
    return tool


def test_an_mcp_tool_fits_the_tool_contract(forecast):
    spec = forecast.spec()
    assert spec["name"] == "get_forecast" and "Weather forecast for a city" in forecast.describe()
    assert spec["parameters"]["required"] == ["city"]
    assert spec["parameters"]["properties"]["days"]["type"] == "integer"
    assert "text" in forecast.output_fields()


def test_call_returns_text_and_provenance(forecast):
    res = forecast({"city": "Paris", "days": 2})
    assert res.ok and res.summary() == "Paris: sunny, 21 C for 2 day(s)"
    assert res.provenance()["mcp_server"] == "weather" and res.provenance()["tool"] == "get_forecast"


def test_an_mcp_error_result_is_a_failed_result_and_bad_arguments_never_reach_the_server(forecast):
    res = forecast({"city": "Atlantis"})
    assert not res.ok and "no forecast for Atlantis" in res.summary()
    with pytest.raises(InputError, match="unknown argument"):
        forecast({"town": "Paris"})


def test_the_planner_sees_it_and_its_plan_runs(weather, forecast):
    def plan(messages: list[dict]) -> str:
        system = messages[0]["content"]
        assert "get_forecast" in system and "Weather forecast for a city" in system
        return json.dumps({"steps": [{"id": 1, "tool": "get_forecast", "args": {"city": "Oslo"}, "depends_on": []}]})

    agent = fake_agent(FakeChatModel([plan], default="x"))
    agent.add_tool(forecast)
    result = agent.run("will it rain in Oslo this weekend, and how warm will it be?")
    assert [s.tool for s in result.plan.steps] == ["get_forecast"]
    assert result.steps[0].ok and "Oslo: sunny" in result.answer
    assert "get_forecast" in plan_messages(agent.tools, "x")[0]["content"]


def test_the_router_chooses_it_for_a_request_like_its_description(forecast):
    agent = fake_agent(FakeChatModel(default="x"))
    agent.add_tool(forecast)
    route = agent.router.route("weather forecast for a city: temperature and rain")
    assert route.tool == "get_forecast", route


def test_configured_servers_join_the_default_tools(weather, tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    config = Config()
    config.mcp.servers = [weather, McpServerConfig(name="down", url="http://127.0.0.1:9/mcp", timeout_s=5)]
    tools, problems = default_tools(config)
    assert "get_forecast" in [t.name for t in tools]
    (down,) = [p for p in problems if p.tool == "mcp:down"]
    assert down.reason.startswith("MCP server 'down' (http://127.0.0.1:9/mcp) is not reachable:")
    assert "\n" not in down.reason


def test_a_server_that_is_down_is_one_line():
    with pytest.raises(ToolError) as err:
        mcp_tools(McpServerConfig(name="gone", command="/nonexistent/mcp-server"))
    assert str(err.value).startswith("MCP server 'gone' (/nonexistent/mcp-server) is not reachable:")


def _start_http(port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, str(SERVER), str(port)], stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the MCP server did not come up")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=15)


def test_the_server_over_streamable_http_and_restarted_between_calls():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _start_http(port)
    try:
        (tool,) = mcp_tools(McpServerConfig(name="weather", url=f"http://127.0.0.1:{port}/mcp"))
        assert tool({"city": "Lima"}).text == "Lima: sunny, 21 C for 1 day(s)"
        _stop(proc)
        proc = _start_http(port)  # the session the tool held is gone: it opens a new one
        assert tool({"city": "Quito"}).text == "Quito: sunny, 21 C for 1 day(s)"
        _stop(proc)
        with pytest.raises(ToolError, match="is not reachable"):
            tool({"city": "Lima"})
    finally:
        if proc.poll() is None:
            _stop(proc)
