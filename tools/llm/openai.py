"""Any OpenAI-compatible `/chat/completions` endpoint (Ollama, vLLM, llama.cpp server, ...), with the
standard library only: urllib, and server-sent events parsed by hand. 429 and 5xx answers are retried
with exponential backoff (honouring `Retry-After`); a schema goes out `strict` only when it follows
strict mode's rules (`strict_schema`)."""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

from polymodal.cancel import check_cancelled
from polymodal.errors import ModelUnavailable
from tools.llm.base import GenerationStats, Message, StatsRecorder

__all__ = ["OpenAIChatModel", "strict_schema"]

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_WAIT_S = 60.0  # a longer Retry-After is capped: the caller would rather see the error


class OpenAIChatModel(StatsRecorder):
    """Any OpenAI-compatible `/chat/completions` endpoint: Ollama, vLLM, llama.cpp server, ..."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        name: str = "",
    ) -> None:
        if not base_url:
            raise ModelUnavailable("the openai LLM backend needs [llm] base_url, e.g. http://127.0.0.1:11434/v1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))  # retries after the first attempt
        self.backoff_s = backoff_s  # first wait; doubles each retry unless the server says Retry-After
        self.name = name or model
        self._sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, cfg: Any, cache_dir: Any = None) -> "OpenAIChatModel":
        """`[llm] base_url`, `model`, `timeout_s`, `max_retries`; the API key is read from the variable
        `api_key_env` names."""
        key = os.environ.get(cfg.api_key_env) if getattr(cfg, "api_key_env", "") else None
        return cls(cfg.base_url, cfg.model, key, timeout=cfg.timeout_s, max_retries=cfg.max_retries)

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
            strict = strict_schema(json_schema)
            spec: dict[str, Any] = {"name": "response", "schema": strict or json_schema}
            if strict is not None:
                spec["strict"] = True
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _open(self, body: dict[str, Any]):
        """POST `body`; a 429 or 5xx answer is retried up to `max_retries` times, waiting `Retry-After`
        when the server sends one, else `backoff_s` doubled each time."""
        url = f"{self.base_url}/chat/completions"
        accept = "text/event-stream" if body["stream"] else "application/json"
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode("utf-8")
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                status, detail = exc.code, " ".join(exc.read(300).decode("utf-8", "replace").split())
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                if exc.code not in RETRY_STATUS or attempt == attempts - 1:
                    tried = f" after {attempts} attempts" if exc.code in RETRY_STATUS and attempts > 1 else ""
                    raise ModelUnavailable(f"LLM endpoint {url} answered HTTP {exc.code}{tried}: {detail}") from exc
            except (urllib.error.URLError, OSError) as exc:  # not retried: a timeout would multiply
                reason = getattr(exc, "reason", exc)
                raise ModelUnavailable(f"cannot reach LLM endpoint {url}: {reason}") from exc
            wait = min(MAX_RETRY_WAIT_S, retry_after if retry_after is not None else self.backoff_s * 2**attempt)
            log.info(
                "LLM endpoint %s: HTTP %d, retry %d of %d in %.1f s", url, status, attempt + 1, self.max_retries, wait
            )
            self._sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

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


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` as OpenAI's strict structured outputs accept it (every object lists all its properties
    as required and sets `additionalProperties: false`, at every depth), or None when it cannot be
    made so without changing its meaning (an optional property, open extra properties): the caller
    then sends it without `strict`."""
    try:
        return _strict(schema)
    except _NotStrict:
        return None


class _NotStrict(Exception):
    pass


_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("$defs", "definitions")


def _strict(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if out.get("type") == "object" or "properties" in out:
        props = out.get("properties") or {}
        if set(out.get("required") or []) != set(props):
            raise _NotStrict("an optional property")
        if out.get("additionalProperties", False) is not False:
            raise _NotStrict("open additional properties")
        out["properties"] = {k: _strict(v) for k, v in props.items()}
        out["required"] = list(props)
        out["additionalProperties"] = False
    if "items" in out:
        out["items"] = _strict(out["items"])
    for key in _SUBSCHEMA_LISTS:
        if key in out:
            out[key] = [_strict(s) for s in out[key]]
    for key in _SUBSCHEMA_MAPS:
        if key in out:
            out[key] = {k: _strict(v) for k, v in out[key].items()}
    return out
