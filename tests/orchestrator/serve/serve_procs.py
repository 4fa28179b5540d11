"""Start the real `polymodal` server processes on a free port, with agents from `serve_agents.py`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "POLYMODAL_HOME": str(tmp_path / "home"), **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("POLYMODAL_API_KEY", None) if "POLYMODAL_API_KEY" not in extra else None
    return env


def polymodal(*args: str, env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, env=env, **kw)


def wait_until_up(proc: subprocess.Popen, url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"server exited with {proc.returncode}: {out}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"server at {url} did not come up")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def start_serve(tmp_path):
    """start_serve(agent="serve_agents:echo_agent", *flags, env={}) -> base URL of a running `polymodal serve`."""
    procs: list[subprocess.Popen] = []

    def start(agent: str = "serve_agents:echo_agent", *flags: str, env: dict[str, str] | None = None) -> str:
        port = free_port()
        proc = polymodal(
            "serve", "--agent", agent, "--port", str(port), "--no-warm-up", *flags,
            env=server_env(tmp_path, **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(proc, base + "/health")
        return base

    yield start
    for proc in procs:
        stop(proc)
