"""The OpenAI-compatible HTTP backend against a tiny local server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from polymodal.config import LLMConfig
from polymodal.errors import ModelUnavailable
from tools.llm.openai import OpenAIChatModel
from tools.llm.registry import get_chat_model


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "boom"}')
            return
        text = '{"answer": "Paris"}' if "response_format" in body else "The capital is Paris."
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["The ", "capital ", "is ", "Paris."]:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            usage = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}}
            self.wfile.write(f": keep-alive\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
            return
        data = {
            "choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5},
        }
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def server():
    _Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


def test_openai_generate(server, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sekret")
    llm = get_chat_model(LLMConfig(backend="openai", model="m", base_url=server, api_key_env="TEST_LLM_KEY"))
    assert isinstance(llm, OpenAIChatModel)
    assert llm.generate(MSGS, max_tokens=20, stop=["\n"]) == "The capital is Paris."
    req = _Handler.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sekret"
    assert req["body"]["messages"] == MSGS and req["body"]["max_tokens"] == 20 and req["body"]["stop"] == ["\n"]
    assert llm.last_stats().completion_tokens == 5


def test_openai_stream_parses_sse(server):
    llm = OpenAIChatModel(server, "m")
    pieces = list(llm.stream(MSGS))
    assert pieces == ["The ", "capital ", "is ", "Paris."]
    assert _Handler.requests[0]["body"]["stream"] is True and _Handler.requests[0]["auth"] is None
    assert llm.last_stats().prompt_tokens == 11


def test_openai_json_schema_is_sent_strict_with_strict_mode_rules(server):
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "steps": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
            },
        },
        "required": ["answer", "steps"],
    }
    out = OpenAIChatModel(server, "m").generate(MSGS, json_schema=schema)
    assert json.loads(out) == {"answer": "Paris"}
    rf = _Handler.requests[0]["body"]["response_format"]
    sent = rf["json_schema"]
    assert rf["type"] == "json_schema" and sent["strict"] is True
    assert sent["schema"]["additionalProperties"] is False
    assert sent["schema"]["properties"]["steps"]["items"]["additionalProperties"] is False  # recursively
    assert sent["schema"]["properties"]["steps"]["items"]["required"] == ["n"]


def test_openai_schema_with_an_optional_property_is_sent_without_strict(server):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "note": {"type": "string"}},
        "required": ["answer"],
    }
    OpenAIChatModel(server, "m").generate(MSGS, json_schema=schema)
    sent = _Handler.requests[0]["body"]["response_format"]["json_schema"]
    assert "strict" not in sent and sent["schema"] == schema  # sent as given, not silently made stricter


def test_openai_errors_are_one_line_user_errors(server):
    with pytest.raises(ModelUnavailable, match="HTTP 500"):
        OpenAIChatModel(server, "broken", max_retries=0).generate(MSGS)
    with pytest.raises(ModelUnavailable, match="cannot reach"):
        OpenAIChatModel("http://127.0.0.1:9/v1", "m", timeout=2).generate(MSGS)
    with pytest.raises(ModelUnavailable, match="base_url"):
        OpenAIChatModel("", "m")


def test_rag_over_an_openai_compatible_server_declines_without_logits(server, tmp_path):
    """No logits on this backend: the coverage gate, the model's reply, the citation check and
    grounding decide (and the result says so); P(NOT_FOUND) and the re-ask are not asked."""
    from indexes.embedders import HashEmbedder
    from indexes.text import Document, TextIndex
    from polymodal.config import Config
    from tools.rag import RagAnswerTool

    index = TextIndex.open(tmp_path / "kb", HashEmbedder(256), chunk_tokens=200)
    index.upsert([Document(id="fr", text="Paris is the capital of France, on the Seine.", source="/docs/fr.txt")])
    llm = get_chat_model(LLMConfig(backend="openai", model="m", base_url=server))
    res = RagAnswerTool(index.folder, config=Config(), llm=llm, index=index).run("What is the capital of France?")
    # the server's reply cites nothing and is too short to be matched to a passage: the citation check declines
    assert not res.found and res.reason == "no verifiable citation" and res.draft == "The capital is Paris."
    assert res.not_found_probability is None and res.checks == ["coverage", "model reply", "citations", "grounding"]
    off = RagAnswerTool(index.folder, config=Config(), llm=llm, index=index).run("quantum gluon lattice confinement")
    assert not off.found and "off-topic retrieval" in off.reason
    index.close()
