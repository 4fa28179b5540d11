"""The two non-default chat backends: any OpenAI-compatible HTTP endpoint, and transformers.

Both follow `tools.llm.ChatModel`. The HTTP one needs only the standard library (urllib, SSE
parsing by hand); the transformers one imports torch/transformers on first use.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from polymodal.errors import ModelUnavailable, require
from tools.llm import GenerationStats, Message, _StatsMixin

__all__ = ["OpenAIChatModel", "TransformersChatModel", "extract_json"]


class OpenAIChatModel(_StatsMixin):
    """Any OpenAI-compatible `/chat/completions` endpoint: Ollama, vLLM, llama.cpp server, ..."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 120.0,
                 name: str = "") -> None:
        if not base_url:
            raise ModelUnavailable("the openai LLM backend needs [llm] base_url, e.g. http://127.0.0.1:11434/v1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.name = name or model

    @classmethod
    def from_config(cls, cfg: Any) -> "OpenAIChatModel":
        key = os.environ.get(cfg.api_key_env) if getattr(cfg, "api_key_env", "") else None
        return cls(cfg.base_url, cfg.model, key)

    def _payload(self, messages: list[Message], max_tokens: int, temperature: float,
                 json_schema: dict | None, stop: list[str] | None, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "max_tokens": max_tokens,
                                "temperature": temperature, "stream": stream}
        if stop:
            body["stop"] = stop
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "response", "schema": json_schema, "strict": True}}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _open(self, body: dict[str, Any]):
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if body["stream"] else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace")
            raise ModelUnavailable(f"LLM endpoint {url} answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelUnavailable(f"cannot reach LLM endpoint {url}: {reason}") from exc

    def generate(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> str:
        t0 = time.perf_counter()
        with self._open(self._payload(messages, max_tokens, temperature, json_schema, stop, False)) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelUnavailable(f"LLM endpoint returned no message: {str(data)[:200]}") from exc
        usage = data.get("usage") or {}
        self._set_stats(GenerationStats(prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                        completion_tokens=int(usage.get("completion_tokens", 0)),
                                        decode_s=time.perf_counter() - t0))
        return text

    def stream(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
               json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> Iterator[str]:
        t0 = time.perf_counter()
        t_first = None
        n = 0
        usage: dict[str, Any] = {}
        with self._open(self._payload(messages, max_tokens, temperature, json_schema, stop, True)) as resp:
            for event in _sse_events(resp):
                if event == "[DONE]":
                    break
                chunk = json.loads(event)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        t_first = t_first or time.perf_counter()
                        n += 1
                        yield piece
        t_end = time.perf_counter()
        t_first = t_first or t_end
        self._set_stats(GenerationStats(prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                        completion_tokens=int(usage.get("completion_tokens", n)),
                                        prefill_s=t_first - t0, decode_s=t_end - t_first))


def _sse_events(resp) -> Iterator[str]:
    """The `data:` payloads of a server-sent-events stream (multi-line data joined by newlines)."""
    data: list[str] = []
    for raw in resp:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield "\n".join(data)


def extract_json(text: str) -> str:
    """The first complete JSON object in `text` (models without constrained decoding wrap it)."""
    start = text.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                esc = (c == "\\") and not esc
                if c == '"' and not esc:
                    in_str = False
                continue
            if c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    candidate = text[start : i + 1]
                    try:
                        json.loads(candidate)
                        return candidate
                    except ValueError:
                        break
        start = text.find("{", start + 1)
    return text


class TransformersChatModel(_StatsMixin):
    """A causal LM through transformers: a hub id, a local folder, or a .gguf file (dequantized).

    JSON-schema output is best effort here (the schema goes into the prompt and the first JSON
    object is extracted): transformers has no grammar-constrained decoding built in.
    """

    def __init__(self, model: str | Path | Callable[[], str | Path], *, name: str = "", dtype: str = "bfloat16",
                 device: str = "cpu") -> None:
        self._ref = model
        self.dtype = dtype
        self.device = device
        self.name = name or (Path(str(model)).name if not callable(model) else "transformers")
        self._loaded: tuple[Any, Any] | None = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()

    def _source(self) -> tuple[str, dict[str, Any]]:
        ref = str(self._ref() if callable(self._ref) else self._ref)
        p = Path(ref).expanduser()
        if p.is_file() and p.suffix == ".gguf":
            return str(p.parent), {"gguf_file": p.name, "local_files_only": True}
        if p.exists():
            return str(p), {"local_files_only": True}
        if ref.startswith(("/", ".", "~")) or ref.count("/") != 1:
            raise ModelUnavailable(f"LLM folder not found: {ref} (set [llm] model to a local folder or a hub id)")
        return ref, {}  # a hub id: loaded only where a hub is reachable

    @property
    def loaded(self) -> tuple[Any, Any]:
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    def _load(self) -> tuple[Any, Any]:
        transformers = require("transformers", "models", "the transformers LLM backend")
        torch = require("torch", "models", "the transformers LLM backend")
        src, kw = self._source()
        try:
            tok = transformers.AutoTokenizer.from_pretrained(src, **kw)
            model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, self.dtype), **kw)
        except OSError as exc:
            raise ModelUnavailable(f"cannot load LLM '{src}' with transformers: {str(exc).splitlines()[0]}") from exc
        model.to(self.device).eval()
        return tok, model

    def _inputs(self, messages: list[Message], json_schema: dict | None) -> Any:
        tok, model = self.loaded
        msgs = [dict(m) for m in messages]
        if json_schema is not None:
            hint = "Reply with one JSON object only, matching this JSON schema: " + json.dumps(json_schema)
            msgs = [{"role": "system", "content": hint}] + msgs if msgs[0]["role"] != "system" else \
                [{"role": "system", "content": msgs[0]["content"] + "\n" + hint}] + msgs[1:]
        return tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True).to(model.device)

    def _gen_kwargs(self, max_tokens: int, temperature: float) -> dict[str, Any]:
        tok, _ = self.loaded
        kw: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": tok.pad_token_id or tok.eos_token_id}
        if temperature > 0:
            kw.update(do_sample=True, temperature=temperature)
        else:
            kw.update(do_sample=False)
        return kw

    def generate(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                 json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> str:
        text = "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature,
                                   json_schema=json_schema, stop=stop))
        return extract_json(text) if json_schema is not None else text

    def stream(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
               json_schema: dict[str, Any] | None = None, stop: list[str] | None = None) -> Iterator[str]:
        transformers = require("transformers", "models")
        tok, model = self.loaded
        inputs = self._inputs(messages, json_schema)
        streamer = transformers.TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        kwargs = {**inputs, **self._gen_kwargs(max_tokens, temperature), "streamer": streamer}
        with self._gen_lock:
            t0 = time.perf_counter()
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    model.generate(**kwargs)
                except BaseException as exc:  # surfaced in the caller's thread below
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            t_first, n, emitted, drained = None, 0, "", False
            try:
                for piece in streamer:
                    if not piece:
                        continue
                    t_first = t_first or time.perf_counter()
                    n += 1
                    cut = _stop_at(emitted + piece, stop)
                    if cut is not None:
                        if cut > len(emitted):
                            yield (emitted + piece)[len(emitted):cut]
                        break
                    emitted += piece
                    yield piece
                else:
                    drained = True
            finally:
                if not drained:  # stopped early: let generate() finish before the lock is released
                    for _ in streamer:
                        pass
                worker.join()
            if failure:
                raise failure[0]
            t_end = time.perf_counter()
            t_first = t_first or t_end
            self._set_stats(GenerationStats(prompt_tokens=int(inputs["input_ids"].shape[1]), completion_tokens=n,
                                            prefill_s=t_first - t0, decode_s=t_end - t_first))


def _stop_at(text: str, stop: list[str] | None) -> int | None:
    if not stop:
        return None
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else None

