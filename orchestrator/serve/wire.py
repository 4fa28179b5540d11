"""The OpenAI chat-completions wire format, without any web framework: a request's `messages` as a
polymodal conversation, the agent's result as a completion or as stream chunks (the answer as the
assistant message, citations/artifacts/provenance under the extra key `polymodal`), and local
file paths swapped for the server's own media URLs. The bare OpenAI shapes (`Reply`, `error_body`)
live in tools/llm/wire.py, shared with the chat model's own server (tools/llm/ray_serve.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.errors import InputError
from tools.llm.wire import Reply, error_body

__all__ = [
    "ChatRequest",
    "parse_chat_request",
    "TurnMemory",
    "MediaStore",
    "PathRewriter",
    "Reply",
    "error_body",
    "result_extra",
    "swap_paths",
    "image_markdown",
]

ROLES = ("system", "developer", "user", "assistant", "tool")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


@dataclass
class ChatRequest:
    model: str
    text: str  # the last user message: the request the agent answers
    history: list[tuple[str, str]]  # earlier (user, assistant) exchanges, oldest first
    stream: bool = False
    image: bytes | None = None  # an image attached to the last user message (a data: URL's bytes)


_DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,(?P<data>.*)", re.S)


def _image(part: dict[str, Any], where: str) -> bytes:
    url = part.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    m = _DATA_URL.fullmatch(url.strip()) if isinstance(url, str) else None
    if m is None:
        raise InputError(f"{where}: an image must be a data:image/...;base64 URL (the server fetches no URLs)")
    try:
        return base64.b64decode(m.group("data"), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{where}: the image's base64 data is malformed") from None


def _content(content: Any, where: str) -> tuple[str, list[bytes]]:
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise InputError(f"{where}: content must be a string or a list of parts")
    parts: list[str] = []
    images: list[bytes] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind in ("text", "input_text"):
            parts.append(str(part.get("text", "")))
        elif kind == "image_url":
            images.append(_image(part, where))
        else:
            raise InputError(f"{where}: content part '{kind}' is not supported; send text and image_url parts")
    return "\n".join(parts), images


def parse_chat_request(data: Any, model_id: str) -> ChatRequest:
    """Check a /v1/chat/completions body; a malformed one is an `InputError` (HTTP 400)."""
    if not isinstance(data, dict):
        raise InputError("the request body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("'model' is required")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("'messages' must be a non-empty list")
    turns: list[tuple[str, str]] = []
    images: list[bytes] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InputError(f"messages[{i}]: 'role' must be one of {', '.join(ROLES)}")
        text, images = _content(m.get("content"), f"messages[{i}]")  # only the last message's images count
        turns.append((m["role"], text))
    if turns[-1][0] != "user" or not (turns[-1][1].strip() or images):
        raise InputError("the last message must be a non-empty user message")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:  # system/tool messages are not the agent's to follow
        if role == "user":
            pending = text if pending is None else f"{pending}\n{text}"
        elif role == "assistant" and pending is not None:
            history.append((pending, text))
            pending = None
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InputError("'stream' must be true or false")
    if len(images) > 1:
        raise InputError("attach at most one image to a message")
    return ChatRequest(model, turns[-1][1], history, stream, images[0] if images else None)


class TurnMemory:
    """The turns this server answered, keyed by (request, answer as sent): when a client sends an
    exchange back as history, its plan and steps return with it, so "make it bluer" finds what to
    change. Only a client that holds the exact exchange gets it back; nothing else crosses requests."""

    def __init__(self, size: int = 2048) -> None:
        self._turns: OrderedDict[str, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def _key(request: str, answer: str) -> str:
        return hashlib.sha256(f"{request.strip()}\0{answer.strip()}".encode()).hexdigest()

    def remember(self, request: str, answer: str, turn: Any) -> None:
        with self._lock:
            self._turns[self._key(request, answer)] = turn
            while len(self._turns) > self._size:
                self._turns.popitem(last=False)

    def turns(self, history: list[tuple[str, str]]) -> list[Any]:
        """Turns for a conversation (a new list: each request gets its own)."""
        from orchestrator.conversation import Turn

        with self._lock:
            found = [self._turns.get(self._key(q, a)) for q, a in history]
        return [t if t is not None else Turn(q, a) for t, (q, a) in zip(found, history)]


class MediaStore:
    """Files the agent produced or found, served at unguessable URLs (`/v1/media/<token>/<name>`):
    a client never sees a local path, and only files an answer named can be fetched."""

    def __init__(self, size: int = 4096) -> None:
        self._by_token: OrderedDict[str, Path] = OrderedDict()
        self._by_path: dict[str, str] = {}
        self._size = size
        self._lock = threading.Lock()

    def url(self, path: str, base_url: str) -> str:
        p = Path(path)
        with self._lock:
            token = self._by_path.get(str(p))
            if token is None:
                token = secrets.token_urlsafe(16)
                self._by_token[token] = p
                self._by_path[str(p)] = token
                while len(self._by_token) > self._size:
                    old_token, old = self._by_token.popitem(last=False)
                    self._by_path.pop(str(old), None)
        return f"{base_url.rstrip('/')}/v1/media/{token}/{p.name}"

    def path(self, token: str) -> Path | None:
        with self._lock:
            p = self._by_token.get(token)
        return p if p is not None and p.is_file() else None


class PathRewriter:
    """Replaces local paths with URLs in streamed text, holding back a tail that may be the start of one."""

    def __init__(self, urls: dict[str, str] | None = None) -> None:
        self.urls: dict[str, str] = dict(urls or {})
        self._held = ""

    def feed(self, text: str) -> str:
        buf = self._held + text
        for path in sorted(self.urls, key=len, reverse=True):
            buf = buf.replace(path, self.urls[path])
        keep = 0
        for path in self.urls:
            for n in range(min(len(path) - 1, len(buf)), keep, -1):
                if path.startswith(buf[-n:]):
                    keep = n
                    break
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        out, self._held = self._held, ""
        return out

    @classmethod
    def whole(cls, text: str, urls: dict[str, str]) -> str:
        """A complete text with its paths replaced."""
        rewriter = cls(urls)
        return rewriter.feed(text) + rewriter.flush()


def result_extra(result: Any, urls: dict[str, str]) -> dict[str, Any]:
    """What the agent's result adds to the answer: citations, artifacts (as URLs), each step's outcome
    and provenance, and the plan."""
    from tools.base import read_result, to_plain

    steps = []
    for s in result.steps:
        view = read_result(s.value)
        steps.append(
            {
                "tool": s.tool,
                "ok": s.ok,
                "error": s.error,
                "seconds": round(s.seconds, 3),
                "provenance": view.provenance,
            }
        )
    artifacts = [
        {"url": urls[a], "name": Path(a).name, "image": a.lower().endswith(IMAGE_SUFFIXES)}
        for a in result.artifacts
        if a in urls
    ]
    extra = {
        "citations": to_plain(result.citations),
        "artifacts": artifacts,
        "steps": steps,
        "plan": to_plain(result.plan.to_dict()),
        "timings": result.timings,
    }
    return swap_paths(extra, urls)


def swap_paths(obj: Any, urls: dict[str, str]) -> Any:
    """`obj` (plain JSON) with every served file's local path replaced by its URL."""
    if isinstance(obj, dict):
        return {k: swap_paths(v, urls) for k, v in obj.items()}
    if isinstance(obj, list):
        return [swap_paths(v, urls) for v in obj]
    if isinstance(obj, str) and urls:
        return PathRewriter.whole(obj, urls)
    return obj


def image_markdown(extra: dict[str, Any], answer: str) -> str:
    """Markdown image links for the images an answer does not show yet (chat UIs render them)."""
    return "".join(
        f"\n\n![{a['name']}]({a['url']})" for a in extra["artifacts"] if a["image"] and f"({a['url']})" not in answer
    )
