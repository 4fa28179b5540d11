"""The README's examples for the HTTP and MCP faces run against servers this test starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from serve_agents import build_kb
from serve_procs import ROOT, server_env

from polymodal.config import Config


def block(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- readme-test: {marker} -->\n```\w+\n(.*?)```", text, flags=re.S)
    assert m, f"README has no block marked {marker}"
    return m.group(1)


def run_python(code: str, env: dict[str, str], tmp_path) -> str:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_openai_example(start_serve, tmp_path):
    base = start_serve("serve_agents:echo_agent")
    code = block("openai").replace("http://127.0.0.1:8000", base)
    out = run_python(code, server_env(tmp_path), tmp_path)
    assert "Answer about What does the knowledge base say about edge AI? [1]" in out
    assert "kb/edge-ai.md" in out and out.rstrip().endswith("seen: hello")


def test_mcp_examples(tmp_path):
    config = json.loads(block("mcp-config"))["mcpServers"]["polymodal"]
    assert config["command"] == "polymodal"
    build_kb(tmp_path / "kb")
    env = server_env(tmp_path, KB_DIR=str(tmp_path / "kb"))
    # `polymodal` is this checkout's CLI with the test's agent; the SDK passes only a minimal environment on
    args = ["-m", "orchestrator.cli", *config["args"], "--agent", "serve_agents:kb_agent"]
    code = block("mcp-python").replace(
        'command="polymodal", args=["mcp"]',
        f"command={sys.executable!r}, args={args!r}, cwd={str(ROOT)!r}, env={env!r}",
    )
    out = run_python(code, env, tmp_path)
    assert "'rag_answer'" in out and "31 meters" in out and "/docs/harbor.txt" in out


def test_mcp_servers_config_reads():
    servers = Config.from_toml(block("mcp-servers")).mcp.servers
    assert [(s.name, s.command, s.url) for s in servers] == [
        ("weather", "python", ""),
        ("search", "", "http://127.0.0.1:9000/mcp"),
    ]
