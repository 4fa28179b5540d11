"""Retries of the OpenAI-compatible backend against a local server on a real socket that answers
from a script: 429 with Retry-After, 5xx, then 200."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from polymodal.config import LLMConfig
from polymodal.errors import ModelUnavailable
from tools.llm.openai import OpenAIChatModel, strict_schema
from tools.llm.registry import get_chat_model

MSGS = [{"role": "user", "content": "Capital of France?"}]


class _Scripted(BaseHTTPRequestHandler):
    script: list[tuple[int, dict[str, str]]] = []  # (status, headers) per request; then 200s
    seen: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body["messages"][-1]["content"])
        status, headers = type(self).script.pop(0) if type(self).script else (200, {})
        if status == 200 and body.get("stream"):
            chunk = json.dumps({"choices": [{"delta": {"content": "Paris."}}]})
            raw = f"data: {chunk}\n\ndata: [DONE]\n\n".encode()
        elif status == 200:
            raw = json.dumps({"choices": [{"message": {"content": "Paris."}}], "usage": {}}).encode()
        else:
            raw = json.dumps({"error": {"message": f"status {status}\nsecond line"}}).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def scripted():
    _Scripted.script, _Scripted.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _model(url: str, **kwargs) -> tuple[OpenAIChatModel, list[float]]:
    llm = OpenAIChatModel(url, "m", **kwargs)
    waits: list[float] = []
    llm._sleep = waits.append  # record the waits instead of sleeping them
    return llm, waits


def test_429_waits_retry_after_then_succeeds(scripted):
    _Scripted.script = [(429, {"Retry-After": "3"})]
    llm, waits = _model(scripted)
    assert llm.generate(MSGS) == "Paris."
    assert waits == [3.0] and len(_Scripted.seen) == 2


def test_5xx_backs_off_exponentially_then_succeeds(scripted):
    _Scripted.script = [(500, {}), (503, {}), (502, {})]
    llm, waits = _model(scripted, max_retries=3, backoff_s=0.25)
    assert llm.generate(MSGS) == "Paris."
    assert waits == [0.25, 0.5, 1.0]


def test_stream_is_retried_too(scripted):
    _Scripted.script = [(429, {"Retry-After": "0"})]
    llm, waits = _model(scripted)
    assert list(llm.stream(MSGS)) == ["Paris."]
    assert waits == [0.0] and len(_Scripted.seen) == 2


def test_attempts_are_bounded_and_the_error_is_one_line(scripted):
    _Scripted.script = [(500, {})] * 10
    llm, waits = _model(scripted, max_retries=2)
    with pytest.raises(ModelUnavailable) as info:
        llm.generate(MSGS)
    message = str(info.value)
    assert "HTTP 500 after 3 attempts" in message and "\n" not in message
    assert len(_Scripted.seen) == 3 and waits == [0.5, 1.0]


def test_a_4xx_other_than_429_is_not_retried(scripted):
    _Scripted.script = [(401, {})]
    llm, waits = _model(scripted)
    with pytest.raises(ModelUnavailable, match="HTTP 401:"):
        llm.generate(MSGS)
    assert waits == [] and len(_Scripted.seen) == 1


def test_a_huge_retry_after_is_capped(scripted):
    _Scripted.script = [(429, {"Retry-After": "86400"})]
    llm, waits = _model(scripted)
    llm.generate(MSGS)
    assert waits == [60.0]


def test_retries_and_timeout_come_from_the_config(scripted):
    llm = get_chat_model(LLMConfig(backend="openai", model="m", base_url=scripted, timeout_s=7.5, max_retries=5))
    assert (llm.timeout, llm.max_retries) == (7.5, 5)


def test_strict_schema_rules():
    closed = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert strict_schema(closed) == {**closed, "additionalProperties": False}
    assert strict_schema({**closed, "additionalProperties": True}) is None
    nested_optional = {
        "type": "object",
        "properties": {
            "x": {"anyOf": [{"type": "object", "properties": {"b": {"type": "integer"}}}, {"type": "null"}]}
        },
        "required": ["x"],
    }
    assert strict_schema(nested_optional) is None  # an optional property deep inside
    defs = {
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P"}},
        "required": ["p"],
        "$defs": {"P": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
    }
    assert strict_schema(defs)["$defs"]["P"]["additionalProperties"] is False
