"""What the client faces add to an answer: `polymodal serve` (the `openai` client, streamed and not)
and an MCP tool call (stdio, one kept session), against the same work done in-process.

    python -m bench.serve_overhead                 # 20 requests each, fake agent (no model)
    python -m bench.serve_overhead --runs 50

The agent is `orchestrator.testing.fake_agent` so only the face is measured. Baselines measured in
the same run: `agent.run()` in-process for the HTTP numbers, the tool called in-process for MCP.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUEST = "find photos of a cat"


def _ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(runs: int) -> dict:
    import httpx
    import openai

    from orchestrator.testing import fake_agent

    port = _free_port()
    cmd = [sys.executable, "-m", "orchestrator.cli", "serve", "--agent", "orchestrator.testing:fake_agent"]
    proc = subprocess.Popen([*cmd, "--port", str(port), "--no-warm-up"], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0)
        messages = [{"role": "user", "content": REQUEST}]

        def first_token() -> None:
            for chunk in client.chat.completions.create(model="polymodal", messages=messages, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    break

        client.chat.completions.create(model="polymodal", messages=messages)  # warm
        agent = fake_agent()
        agent.run(REQUEST)
        return {
            "http_non_streaming_ms_p50": _ms(
                lambda: client.chat.completions.create(model="polymodal", messages=messages), runs
            ),
            "http_first_token_ms_p50": _ms(first_token, runs),
            "baseline_agent_run_in_process_ms_p50": _ms(lambda: agent.run(REQUEST), runs),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def bench_mcp(runs: int) -> dict:
    from polymodal.config import McpServerConfig
    from tools.mcp_client import mcp_tools
    from tools.testing import FakeImageSearchTool

    args = ["-m", "orchestrator.cli", "mcp", "--agent", "orchestrator.testing:fake_agent"]
    env_root = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), env_root]).rstrip(os.pathsep)
    t0 = time.perf_counter()
    tools = {t.name: t for t in mcp_tools(McpServerConfig(name="polymodal", command=sys.executable, args=args))}
    connect_ms = round((time.perf_counter() - t0) * 1000, 1)
    remote, local = tools["image_search"], FakeImageSearchTool()
    remote({"query": "a cat"})
    return {
        "mcp_connect_and_list_ms": connect_ms,
        "mcp_call_ms_p50": _ms(lambda: remote({"query": "a cat"}), runs),
        "baseline_tool_call_in_process_ms_p50": _ms(lambda: local({"query": "a cat"}), runs),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    out = {"runs": args.runs, "loadavg_1m": round(os.getloadavg()[0], 2), **bench_http(args.runs)}
    out.update(bench_mcp(args.runs))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
