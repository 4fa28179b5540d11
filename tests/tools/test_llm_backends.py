"""OpenAI-compatible HTTP backend against a tiny local server; transformers on a tiny random model."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from polymodal.config import LLMConfig
from polymodal.errors import ModelUnavailable
from tools.llm import get_chat_model
from tools.llm_backends import OpenAIChatModel, TransformersChatModel, extract_json


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
        data = {"choices": [{"message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 5}}
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


def test_openai_json_schema_is_sent_as_response_format(server):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    out = OpenAIChatModel(server, "m").generate(MSGS, json_schema=schema)
    assert json.loads(out) == {"answer": "Paris"}
    rf = _Handler.requests[0]["body"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == schema


def test_openai_errors_are_one_line_user_errors(server):
    with pytest.raises(ModelUnavailable, match="HTTP 500"):
        OpenAIChatModel(server, "broken").generate(MSGS)
    with pytest.raises(ModelUnavailable, match="cannot reach"):
        OpenAIChatModel("http://127.0.0.1:9/v1", "m", timeout=2).generate(MSGS)
    with pytest.raises(ModelUnavailable, match="base_url"):
        OpenAIChatModel("", "m")


def test_extract_json_finds_the_object():
    assert extract_json('Sure! {"a": "b}", "c": {"d": 1}} trailing') == '{"a": "b}", "c": {"d": 1}}'
    assert extract_json("no json") == "no json"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A tiny random Llama with a word-level tokenizer and a chat template, saved to a folder."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["<pad>", "<unk>", "<s>", "</s>", "system", "user", "assistant", ":", "hello", "world", "paris", "{", "}"]
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                                bos_token="<s>", eos_token="</s>")
    fast.chat_template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}assistant :"
    cfg = transformers.LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                   bos_token_id=2, eos_token_id=3, pad_token_id=0)
    import torch

    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    folder = tmp_path_factory.mktemp("tiny-lm")
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_transformers_backend_generates_and_streams_from_a_local_folder(tiny_lm):
    llm = get_chat_model(LLMConfig(backend="transformers", model=str(tiny_lm)))
    assert isinstance(llm, TransformersChatModel)
    msgs = [{"role": "user", "content": "hello world"}]
    text = llm.generate(msgs, max_tokens=5)
    pieces = list(llm.stream(msgs, max_tokens=5))
    assert "".join(pieces) == text  # greedy: the same output both ways
    stats = llm.last_stats()
    assert stats.prompt_tokens > 3 and 0 < stats.completion_tokens <= 5


def test_transformers_missing_folder_is_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable):
        TransformersChatModel(str(tmp_path / "empty")).generate([{"role": "user", "content": "x"}])
