"""`polymodal mcp` as a real process, driven by the official `mcp` SDK client over stdio and over
streamable HTTP: the tools listed with their schemas, rag_answer over a real index, a bad argument."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from serve_agents import build_kb
from serve_procs import ROOT, free_port, polymodal, server_env, stop, wait_until_up

QUESTION = "How tall is the lighthouse of the Larkspur harbor?"


@pytest.fixture
def kb_env(tmp_path):
    build_kb(tmp_path / "kb")
    return server_env(tmp_path, KB_DIR=str(tmp_path / "kb"))


def stdio(env: dict[str, str]) -> Client:
    args = ["-m", "orchestrator.cli", "mcp", "--agent", "serve_agents:kb_agent"]
    return Client(StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(ROOT)))


async def check_server(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"rag_answer", "image_search", "generate_image", "edge_query"}
    rag = tools["rag_answer"]
    assert rag.input_schema["required"] == ["question"] and rag.description
    result = await client.call_tool("rag_answer", {"question": QUESTION, "k": 2})
    assert not result.is_error
    assert "31 meters" in result.content[0].text
    data = result.structured_content
    (cite,) = data["citations"]
    assert cite["source"] == "/docs/harbor.txt" and "31 meters" in cite["text"]
    assert data["result"]["found"] is True
    bad = await client.call_tool("rag_answer", {"question": QUESTION, "k": "many"})
    assert bad.is_error and bad.content[0].text == "argument 'k' must be an integer"
    unknown = await client.call_tool("rag_answer", {"query": QUESTION})
    assert unknown.is_error and unknown.content[0].text == "rag_answer: unknown argument(s) query"


async def test_stdio(kb_env):
    async with stdio(kb_env) as client:
        await check_server(client)


async def test_progress_reaches_the_client(kb_env):
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with stdio(kb_env) as client:
        result = await client.call_tool("generate_image", {"prompt": "a red fox"}, progress_callback=on_progress)
    assert not result.is_error and result.structured_content["artifacts"] == ["/generated/a-red-fox-0.png"]
    assert seen and seen[-1] == (1.0, "step 3/3")


async def test_streamable_http(kb_env, tmp_path):
    port = free_port()
    proc = polymodal(
        "mcp", "--http", str(port), "--agent", "serve_agents:kb_agent",
        env=kb_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        wait_until_up(proc, url)
        async with Client(url) as client:
            await check_server(client)
    finally:
        stop(proc)


@pytest.mark.slow
async def test_rag_answer_with_the_real_llm_over_stdio(kb_env):
    pytest.importorskip("llama_cpp")
    async with stdio({**kb_env, "REAL_LLM": "1"}) as client:
        result = await client.call_tool("rag_answer", {"question": QUESTION, "k": 2}, read_timeout_seconds=600)
    assert not result.is_error, result.content
    assert result.structured_content["result"]["found"], result.structured_content["result"]
    assert "31" in result.content[0].text
    assert all(c["doc_id"] == "harbor" for c in result.structured_content["citations"])
