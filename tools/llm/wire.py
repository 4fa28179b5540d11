"""The OpenAI chat-completions wire format both sides of an LLM endpoint share, without a web framework:
the error body, a completion and its stream chunks (`Reply`), and a /v1/chat/completions body checked
into a chat model's arguments (`parse_llm_request`). The agent's server (orchestrator/serve/wire.py)
builds its answers on the same shapes; `tools.llm.ray_serve` serves a bare chat model with them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from polymodal.errors import InputError
from tools.llm.base import GenerationStats, Message

__all__ = ["LLMRequest", "Reply", "check_messages", "error_body", "parse_llm_request", "sse", "usage"]

ROLES = ("system", "developer", "user", "assistant")
MAX_STOP = 4  # as OpenAI


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """An error as OpenAI sends it (the `openai` client reads `error.message`)."""
    return {"error": {"message": " ".join(message.split()), "type": kind, "param": None, "code": code}}


def sse(obj: dict[str, Any]) -> str:
    """One server-sent event carrying `obj` as JSON."""
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def usage(stats: GenerationStats | None) -> dict[str, int]:
    prompt, completion = (stats.prompt_tokens, stats.completion_tokens) if stats else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Reply:
    """One response's ids and the OpenAI objects built for it: the completion, or its stream chunks."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model

    def chunk(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> dict:
        out: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if extra is not None:
            out["polymodal"] = extra
        return out

    def usage_chunk(self, stats: GenerationStats | None) -> dict:
        """The last chunk when the client asked `stream_options.include_usage`: no choices, the usage."""
        return {**self.chunk({}), "choices": [], "usage": usage(stats)}

    def completion(
        self, answer: str, extra: dict[str, Any] | None = None, stats: GenerationStats | None = None
    ) -> dict:
        out = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": usage(stats),
        }
        if extra is not None:
            out["polymodal"] = extra
        return out


@dataclass
class LLMRequest:
    """A checked /v1/chat/completions body, as a chat model's arguments (`options()`)."""

    model: str
    messages: list[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    stream: bool = False
    include_usage: bool = False

    def options(self) -> dict[str, Any]:
        """Keyword arguments of `ChatModel.generate` / `stream`."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "json_schema": self.json_schema,
            "stop": self.stop,
        }


def check_messages(messages: Any) -> list[Message]:
    """Chat messages as the chat models take them (`developer` read as `system`, text parts joined);
    anything else is an `InputError`."""
    if not isinstance(messages, list) or not messages:
        raise InputError("'messages' must be a non-empty list")
    out: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InputError(f"messages[{i}]: 'role' must be one of {', '.join(ROLES)}")
        role = "system" if m["role"] == "developer" else m["role"]
        out.append({"role": role, "content": _text(m.get("content"), f"messages[{i}]")})
    if out[-1]["role"] == "assistant":
        raise InputError("the last message must not be the assistant's (nothing to reply to)")
    return out


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InputError(f"{where}: only text content parts are supported")
            parts.append(part["text"])
        return "\n".join(parts)
    raise InputError(f"{where}: 'content' must be a string or a list of text parts")


def parse_llm_request(data: Any, max_tokens_limit: int = 8192) -> LLMRequest:
    """Check a /v1/chat/completions body for a bare chat model; a malformed one is an `InputError`
    (HTTP 400). Supported: messages, max_tokens (or max_completion_tokens), temperature, stop,
    stream (+ stream_options.include_usage), response_format (json_object with an optional schema,
    or json_schema), n = 1."""
    if not isinstance(data, dict):
        raise InputError("the request body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("'model' is required")
    req = LLMRequest(model, check_messages(data.get("messages")))
    limit = data.get("max_completion_tokens", data.get("max_tokens"))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= max_tokens_limit:
            raise InputError(f"'max_tokens' must be an integer from 1 to {max_tokens_limit}")
        req.max_tokens = limit
    temperature = data.get("temperature", 0.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise InputError("'temperature' must be a number from 0 to 2")
    req.temperature = float(temperature)
    req.stop = _stop(data.get("stop"))
    req.json_schema = _schema(data.get("response_format"))
    if data.get("n", 1) != 1:
        raise InputError("'n' must be 1: this server returns one choice")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InputError("'stream' must be true or false")
    req.stream = stream
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise InputError("'stream_options' must be an object")
    req.include_usage = bool(options.get("include_usage", False))
    return req


def _stop(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOP:
        raise InputError(f"'stop' must be a string or a list of at most {MAX_STOP} non-empty strings")
    return stops or None


def _schema(fmt: Any) -> dict[str, Any] | None:
    """The JSON schema a `response_format` asks for, or None for plain text."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        schema = fmt.get("schema", {"type": "object"})
    elif kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    else:
        raise InputError("'response_format' type must be text, json_object or json_schema")
    if not isinstance(schema, dict):
        raise InputError("'response_format' needs a JSON schema object")
    return schema
