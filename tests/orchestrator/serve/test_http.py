"""`polymodal serve` as a real process, driven by the official `openai` client: answers streamed and
not, history from `messages`, isolation between clients, the key, the body limit, the queue, a
client that leaves mid-stream, images as the server's own URLs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from serve_procs import ROOT, server_env

KEY = "sk-test-0123456789"


def client(base: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)


def test_models_and_health(start_serve):
    base = start_serve()
    assert [m.id for m in client(base).models.list()] == ["polymodal"]
    health = httpx.get(base + "/health").json()
    assert health["status"] == "ok" and "rag_answer" in health["tools"]


def test_non_streaming_answer_with_citations(start_serve):
    base = start_serve()
    reply = client(base).chat.completions.create(
        model="polymodal", messages=[{"role": "user", "content": "what is edge AI?"}]
    )
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Answer about what is edge AI? [1]"
    extra = reply.model_extra["polymodal"]
    (cite,) = extra["citations"]
    assert cite["source"] == "kb/edge-ai.md" and (cite["start"], cite["end"]) == (120, 220)
    assert extra["steps"][0]["tool"] == "rag_answer" and extra["steps"][0]["ok"]


def test_streaming_answer_ends_with_the_extra_field(start_serve):
    base = start_serve()
    chunks = list(
        client(base).chat.completions.create(
            model="polymodal", messages=[{"role": "user", "content": "hello"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "seen: hello"
    assert len(chunks) > 3  # token by token, not one block
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["polymodal"]["plan"]["note"] == "small talk"


def test_a_streamed_tool_run_reports_its_steps(start_serve):
    base = start_serve()
    chunks = list(
        client(base).chat.completions.create(
            model="polymodal",
            messages=[{"role": "user", "content": "draw a picture of a red fox on a frozen lake"}],
            stream=True,
        )
    )
    events = [c.model_extra["polymodal"]["event"] for c in chunks if "event" in (c.model_extra.get("polymodal") or {})]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "step_started" and events[0]["tool"] == "generate_image"
    assert [e["fraction"] for e in events if e["kind"] == "step_progress"][-1] == 1.0
    assert kinds[-1] == "step_finished" and events[-1]["ok"]
    assert "Generated 1 image(s)" in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_history_reaches_the_agent_and_stays_with_its_client(start_serve):
    base = start_serve()
    c = client(base)
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello, I am Ada"},
        {"role": "assistant", "content": "hi Ada"},
        {"role": "user", "content": "hello again"},
    ]
    first = c.chat.completions.create(model="polymodal", messages=history)
    assert first.choices[0].message.content == "seen: hello, I am Ada | hello again"
    other = c.chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "hello"}])
    assert other.choices[0].message.content == "seen: hello"  # nothing of the first client's chat


def test_follow_up_reuses_the_previous_turn(start_serve, tmp_path):
    base = start_serve()
    c = client(base)
    ask = [{"role": "user", "content": "find photos of a cat"}]
    first = c.chat.completions.create(model="polymodal", messages=ask)
    answer = first.choices[0].message.content
    follow = ask + [{"role": "assistant", "content": answer}, {"role": "user", "content": "and dogs?"}]
    second = c.chat.completions.create(model="polymodal", messages=follow)
    plan = second.model_extra["polymodal"]["plan"]
    assert plan["source"] == "followup" and plan["steps"][0]["args"]["query"] == "dogs"


def test_images_are_urls_of_the_server_never_local_paths(start_serve, tmp_path):
    base = start_serve("serve_agents:photo_agent", env={"PHOTO_DIR": str(tmp_path)})
    reply = client(base).chat.completions.create(
        model="polymodal", messages=[{"role": "user", "content": "find photos of a cat"}]
    )
    content = reply.choices[0].message.content
    assert str(tmp_path) not in content and str(tmp_path) not in reply.model_dump_json()
    (art,) = reply.model_extra["polymodal"]["artifacts"]
    assert art["image"] and art["url"].startswith(base + "/v1/media/") and f"]({art['url']})" in content
    got = httpx.get(art["url"])
    assert got.status_code == 200 and got.content == (tmp_path / "cat.png").read_bytes()
    assert httpx.get(base + "/v1/media/guessed-token/cat.png").status_code == 404


def test_bad_key_is_an_authentication_error(start_serve):
    base = start_serve("serve_agents:echo_agent", env={"POLYMODAL_API_KEY": KEY})
    with pytest.raises(openai.AuthenticationError):
        client(base, "sk-wrong").chat.completions.create(
            model="polymodal", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.AuthenticationError):
        client(base, "sk-wrong").models.list()
    ok = client(base, KEY).chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "hello"}])
    assert ok.choices[0].message.content == "seen: hello"


def test_too_large_request_is_413(start_serve):
    base = start_serve("serve_agents:echo_agent", "--max-body-mb", "0.01")
    with pytest.raises(openai.APIStatusError) as err:
        client(base).chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "x" * 20_000}])
    assert err.value.status_code == 413 and "larger than" in err.value.message
    assert client(base).chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "hello"}])


def test_malformed_requests_are_400_or_404(start_serve):
    base = start_serve()
    with pytest.raises(openai.BadRequestError, match="last message must be a non-empty user message"):
        client(base).chat.completions.create(model="polymodal", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.NotFoundError, match="model 'gpt-4o' not found"):
        client(base).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert httpx.post(base + "/v1/chat/completions", content=b"{not json").status_code == 400


def test_client_leaving_mid_stream_stops_the_run_and_the_server_goes_on(start_serve):
    base = start_serve("serve_agents:endless_agent")
    c = client(base)
    stream = c.chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "hello"}], stream=True)
    got = [next(stream) for _ in range(5)]
    assert "word" in "".join(ch.choices[0].delta.content or "" for ch in got)
    assert httpx.get(base + "/health").json()["running"] == 1
    stream.close()
    deadline = time.monotonic() + 60  # the LLM never ends by itself: only the cancel stops it
    while httpx.get(base + "/health").json()["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(base + "/health").json()["running"] == 0
    after = c.chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "find photos of a cat"}])
    assert after.choices[0].message.content.startswith("Found 3 photo(s)")


def test_requests_beyond_the_limit_wait_their_turn(start_serve):
    base = start_serve("serve_agents:queued_agent", "--max-concurrent", "1")
    answers: list[str] = []

    def ask() -> None:
        r = client(base).chat.completions.create(model="polymodal", messages=[{"role": "user", "content": "count"}])
        answers.append(r.choices[0].message.content)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == ["peak 1"] * 3  # all served, never two at once


def test_agent_slots_follow_what_the_tools_declare():
    from serve_agents import SlowCountTool

    from orchestrator.serve.http import agent_slots
    from orchestrator.testing import fake_agent, fake_tools
    from tools.testing import FakeGenerateTool

    assert agent_slots(fake_agent(max_parallel=3)) == 3  # no tool declares a limit: the executor's
    limited = FakeGenerateTool()
    limited.max_concurrency = 1
    assert agent_slots(fake_agent(tools=[limited], max_parallel=4)) == 1
    assert agent_slots(fake_agent(tools=[*fake_tools(), SlowCountTool()], max_parallel=4)) == 4


def test_beyond_loopback_without_a_key_refuses_to_start(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "serve", "--host", "0.0.0.0", "--agent", "serve_agents:echo_agent"],
        cwd=ROOT, env=server_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: serving on 0.0.0.0 needs an API key: set $POLYMODAL_API_KEY (or --api-key, or [serve] api_key)"
    ]


@pytest.mark.slow
def test_the_real_llm_answers_over_a_knowledge_base(start_serve, tmp_path):
    pytest.importorskip("llama_cpp")
    from serve_agents import build_kb

    build_kb(tmp_path / "kb")
    base = start_serve("serve_agents:kb_agent", env={"KB_DIR": str(tmp_path / "kb"), "REAL_LLM": "1"})
    reply = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0, timeout=900).chat.completions.create(
        model="polymodal", messages=[{"role": "user", "content": "How tall is the lighthouse of the Larkspur harbor?"}]
    )
    assert "31" in reply.choices[0].message.content
    citations = reply.model_extra["polymodal"]["citations"]
    assert citations and all(c["source"] == "/docs/harbor.txt" for c in citations)


def test_an_attached_image_is_searched_by_example_and_shown_as_a_url(start_serve, tmp_path):
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    base = start_serve()
    content = [{"type": "text", "text": "find photos like this one"}, {"type": "image_url", "image_url": {"url": url}}]
    reply = client(base).chat.completions.create(model="polymodal", messages=[{"role": "user", "content": content}])
    extra = reply.model_extra["polymodal"]
    (step,) = extra["plan"]["steps"]
    assert step["tool"] == "image_search" and step["args"]["image"].startswith(base + "/v1/media/")
    assert httpx.get(step["args"]["image"]).content == buf.getvalue()
    bad = [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"no").decode()}}]
    with pytest.raises(openai.BadRequestError, match="not a readable image"):
        client(base).chat.completions.create(model="polymodal", messages=[{"role": "user", "content": bad}])
