"""The LLM as Ray Serve replicas (tools/llm/ray_serve.py, `polymodal serve-llm`): the official `openai`
client against its HTTP face, one request at a time per replica, loopback only, one-line errors, the
agent's OpenAI backend and the Serve-handle backend; and the real offline LLM answering through it.

The replicas run the package's probe model (tools.llm.fake.probe_chat_model): each reply says which
process made it, how many calls that process was running at once, and when."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tools.llm.fake:probe_chat_model"
HELLO = [{"role": "user", "content": "hello"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_the_real_offline_llm_answers_through_the_openai_client(ray_env):
    """One replica of the real model (llama.cpp, joined from its packages), with the cluster's CPUs: it
    runs first in the module, before the probe replicas take them."""
    pytest.importorskip("llama_cpp")
    import openai

    from polymodal.config import Config
    from tools.llm.ray_serve import deploy_llm, undeploy_llm

    port = _free_port()
    config = Config()
    real = deploy_llm(config.llm, config.paths.cache(), replicas=1, port=port, app="real-llm", route_prefix="/real")
    try:
        assert real.url == f"http://127.0.0.1:{port}/real/v1" and real.threads == 2 // ray_env.nodes
        client = openai.OpenAI(base_url=real.url, api_key="unused", max_retries=0)
        question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
        done = client.chat.completions.create(model=real.model, messages=question, max_tokens=8, temperature=0)
        assert "paris" in done.choices[0].message.content.lower()
        assert done.usage.prompt_tokens > 5
        stream = client.chat.completions.create(model=real.model, messages=question, max_tokens=8, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert "paris" in text.lower()
    finally:
        assert undeploy_llm("real-llm")


@pytest.fixture(scope="module")
def served(ray_env):
    """Two probe replicas, deployed by the command users run and left on the fixture's cluster (--detach)."""
    from tools.llm.ray_serve import undeploy_llm

    port = _free_port()
    args = ["--ray", ray_env.address, "--backend", PROBE, "--replicas", "2", "--port", str(port)]
    run = _cli("serve-llm", *args, "--detach", "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    info = json.loads(run.stdout)
    try:
        yield info
    finally:
        assert undeploy_llm(info["app"])


def _client(info):
    import openai

    return openai.OpenAI(base_url=info["url"], api_key="unused", max_retries=0)


def test_the_command_reports_where_the_llm_answers(served, ray_env):
    port = served["url"].split(":")[-1].split("/")[0]
    assert served["url"] == f"http://127.0.0.1:{port}/v1"
    assert served["replicas"] == 2 and served["threads"] == 1  # two CPUs in either cluster, shared out
    assert served["detached"] and served["backend"] == PROBE


def test_the_openai_client_gets_a_completion_and_a_stream(served):
    client = _client(served)
    assert [m.id for m in client.models.list().data] == [served["model"]]

    done = client.chat.completions.create(model=served["model"], messages=HELLO)
    probe = json.loads(done.choices[0].message.content)
    assert probe["at_once"] == 1 and done.choices[0].finish_reason == "stop"
    assert done.usage.completion_tokens > 0
    assert done.model_extra["polymodal"]["pid"] == probe["pid"]  # which replica answered

    chunks = list(
        client.chat.completions.create(
            model=served["model"], messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3  # streamed in pieces, not sent whole
    assert json.loads("".join(pieces))["at_once"] == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len(pieces)


def test_concurrent_requests_spread_over_both_replicas_one_at_a_time(served, ray_env):
    client = _client(served)

    def ask(_: int) -> tuple[dict, dict]:
        done = client.chat.completions.create(model=served["model"], messages=HELLO)
        return json.loads(done.choices[0].message.content), done.model_extra["polymodal"]

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(8)))
    probes = [p for p, _ in replies]
    assert len({p["pid"] for p in probes}) == 2
    assert len({where["node"] for _, where in replies}) == ray_env.nodes  # two nodes: one replica on each
    assert all(p["at_once"] == 1 for p in probes)
    for pid in {p["pid"] for p in probes}:
        calls = sorted((p["start"], p["end"]) for p in probes if p["pid"] == pid)
        assert all(nxt[0] >= prev[1] for prev, nxt in zip(calls, calls[1:])), calls  # never two at once
    spans = sorted((p["start"], p["end"]) for p in probes)
    assert any(nxt[0] < prev[1] for prev, nxt in zip(spans, spans[1:]))  # but the two replicas ran side by side


def _listening(port: int) -> list[str]:
    """The local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_the_endpoint_listens_on_loopback_only(served):
    port = int(served["url"].split(":")[-1].split("/")[0])
    assert _listening(port) == ["127.0.0.1"]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    "body, says",
    [
        (b"{not json", "not valid JSON"),
        (b'{"model": "m", "messages": []}', "'messages' must be a non-empty list"),
        (b'{"model": "m", "messages": [{"role": "robot", "content": "hi"}]}', "'role' must be one of"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}', "'max_tokens'"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "'stream'"),
    ],
)
def test_a_malformed_request_is_a_400_with_a_one_line_error(served, body, says):
    status, answer = _post(
        served["url"] + "/chat/completions", body.replace(b'"m"', json.dumps(served["model"]).encode())
    )
    assert status == 400
    assert says in answer["error"]["message"] and "\n" not in answer["error"]["message"]


def test_the_openai_client_sees_the_400_and_an_unknown_model_as_404(served):
    import openai

    client = _client(served)
    with pytest.raises(openai.BadRequestError, match="must be one of"):
        client.chat.completions.create(model=served["model"], messages=[{"role": "robot", "content": "hi"}])
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.chat.completions.create(model="no-such-model", messages=HELLO)


def test_the_agents_openai_backend_works_against_it(served):
    from orchestrator.testing import fake_agent
    from polymodal.config import LLMConfig
    from tools.llm import get_chat_model

    llm = get_chat_model(LLMConfig(backend="openai", base_url=served["url"], model=served["model"], max_retries=0))
    assert json.loads(llm.generate(HELLO, max_tokens=64))["at_once"] == 1
    assert json.loads("".join(llm.stream(HELLO)))["at_once"] == 1
    assert llm.last_stats().completion_tokens > 0

    result = fake_agent(llm=llm).run("hello there, how are you?")  # small talk: the LLM answers alone
    assert json.loads(result.answer)["at_once"] == 1


def test_the_serve_handle_backend_works_against_it(served, ray_env):
    from polymodal.config import LLMConfig
    from polymodal.errors import InputError, ModelUnavailable
    from tools.llm import RayServeChatModel, get_chat_model

    llm = get_chat_model(LLMConfig(backend="ray-serve", base_url=ray_env.address))
    assert isinstance(llm, RayServeChatModel)
    pids = {json.loads(llm.generate(HELLO))["pid"] for _ in range(2)}
    assert llm.last_stats().completion_tokens > 0
    pieces = list(llm.stream(HELLO))
    assert len(pieces) > 3 and json.loads("".join(pieces))["at_once"] == 1

    with ThreadPoolExecutor(4) as pool:  # the handle spreads calls over the replicas too
        pids |= {json.loads(text)["pid"] for text in pool.map(lambda _: llm.generate(HELLO), range(4))}
    assert len(pids) == 2

    with pytest.raises(InputError, match="'role' must be one of") as bad:
        llm.generate([{"role": "robot", "content": "hi"}])
    assert "\n" not in str(bad.value)
    with pytest.raises(ModelUnavailable, match="no LLM application 'nope'"):
        RayServeChatModel(ray_env.address, app="nope").generate(HELLO)


def test_what_cannot_be_served_is_refused_in_one_line(served):
    from polymodal.config import LLMConfig
    from polymodal.errors import ConfigError
    from tools.llm.ray_serve import deploy_llm

    port = int(served["url"].split(":")[-1].split("/")[0])
    refusals = {
        "already runs on this cluster with its HTTP proxy on 127.0.0.1:": dict(port=port + 1),
        "needs an API key": dict(host="0.0.0.0", port=port),
        "route_prefix": dict(port=port, route_prefix="no-slash"),
    }
    for says, where in refusals.items():
        with pytest.raises(ConfigError, match=says) as err:
            deploy_llm(LLMConfig(backend="fake"), app="refused", **where)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="would call itself"):
        deploy_llm(LLMConfig(backend="ray-serve"), port=port, app="refused")


def test_a_failed_start_is_one_line_and_non_zero():
    run = _cli("serve-llm", "--ray", "127.0.0.1:1", "--json", timeout=120)
    assert run.returncode == 1
    error = json.loads(run.stdout)
    assert not error["ok"] and error["error"].startswith("cannot connect to the Ray cluster at 127.0.0.1:1")
    assert run.stderr.strip().count("\n") == 0
