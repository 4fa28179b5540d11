"""Any OpenAI-compatible `/chat/completions` endpoint (Ollama, vLLM, llama.cpp server, ...), with the
standard library only: urllib, and server-sent events parsed by hand."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

from polymodal.cancel import check_cancelled
from polymodal.errors import ModelUnavailable
from tools.llm.base import GenerationStats, Message, StatsRecorder

__all__ = ["OpenAIChatModel"]


class OpenAIChatModel(StatsRecorder):
    """Any OpenAI-compatible `/chat/completions` endpoint: Ollama, vLLM, llama.cpp server, ..."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 120.0, name: str = ""
    ) -> None:
        if not base_url:
            raise ModelUnavailable("the openai LLM backend needs [llm] base_url, e.g. http://127.0.0.1:11434/v1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.name = name or model

    @classmethod
    def from_config(cls, cfg: Any, cache_dir: Any = None) -> "OpenAIChatModel":
        """`[llm] base_url` and `model`; the API key is read from the variable `api_key_env` names."""
        key = os.environ.get(cfg.api_key_env) if getattr(cfg, "api_key_env", "") else None
        return cls(cfg.base_url, cfg.model, key)

    def _payload(
        self,
        messages: list[Message],
        max_tokens: int,
        temperature: float,
        json_schema: dict | None,
        stop: list[str] | None,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
        if stop:
            body["stop"] = stop
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": json_schema, "strict": True},
            }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _open(self, body: dict[str, Any]):
        url = f"{self.base_url}/chat/completions"
        accept = "text/event-stream" if body["stream"] else "application/json"
        headers = {"Content-Type": "application/json", "Accept": accept}
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

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> str:
        t0 = time.perf_counter()
        with self._open(self._payload(messages, max_tokens, temperature, json_schema, stop, False)) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelUnavailable(f"LLM endpoint returned no message: {str(data)[:200]}") from exc
        usage = data.get("usage") or {}
        self.record_stats(
            GenerationStats(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                decode_s=time.perf_counter() - t0,
            )
        )
        return text

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        t0 = time.perf_counter()
        t_first = None
        n = 0
        usage: dict[str, Any] = {}
        with self._open(self._payload(messages, max_tokens, temperature, json_schema, stop, True)) as resp:
            for event in _sse_events(resp):
                check_cancelled()  # the step's token (polymodal.cancel): stop between tokens
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
        self.record_stats(
            GenerationStats(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", n)),
                prefill_s=t_first - t0,
                decode_s=t_end - t_first,
            )
        )


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
