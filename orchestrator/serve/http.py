"""`polymodal serve`: the agent behind an OpenAI-compatible HTTP API (FastAPI + uvicorn), for Open
WebUI, LibreChat or the `openai` SDK. `/v1/chat/completions` (streamed or not), `/v1/models`,
`/health`, and `/v1/media/...` for the images an answer names. Imported only by the command (FastAPI at import).

Each request gets its own conversation, rebuilt from its `messages`; at most `slots` agent runs
go at once (the rest wait in line), and each tool keeps its own `max_concurrency` across them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from orchestrator.serve.wire import (
    MediaStore,
    PathRewriter,
    Reply,
    TurnMemory,
    error_body,
    image_markdown,
    parse_chat_request,
    result_extra,
    swap_paths,
)
from polymodal.errors import InputError, PolymodalError

__all__ = ["build_app", "agent_slots", "run_server"]

log = logging.getLogger("polymodal.serve")

_END = object()


def agent_slots(agent: Any) -> int:
    """How many agent runs may go at once: the most any declared tool allows (`max_concurrency`), and
    never more than the executor runs in parallel; a run past that waits its turn."""
    parallel = agent.executor.max_parallel
    declared = [t.max_concurrency for t in agent.tools.values() if t.max_concurrency]
    return max(1, min(parallel, max(declared) if declared else parallel))


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class AgentRunner:
    """Runs the (synchronous) agent in a thread per request, at most `slots` at once."""

    def __init__(self, agent: Any, slots: int) -> None:
        self.agent = agent
        self.slots = asyncio.Semaphore(slots)
        self.memory = TurnMemory()
        self.running = 0  # agent runs in progress (read by /health)
        self._lock = threading.Lock()

    def _count(self, step: int) -> None:
        with self._lock:
            self.running += step

    async def events(
        self, text: str, history: list[tuple[str, str]], cancel: threading.Event, image: str | None = None
    ) -> AsyncIterator[Any]:
        from orchestrator.conversation import Conversation

        conversation = Conversation(self.agent, turns=self.memory.turns(history))
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the loop closed (server shutting down)
                pass

        def work() -> None:
            stream = conversation.stream(text, image=image, cancel=cancel)
            self._count(+1)
            try:
                for event in stream:
                    if cancel.is_set():
                        break  # the client left: closing the stream stops the LLM mid-answer
                    post(event)
            except BaseException as exc:  # noqa: BLE001 - handed to the request, which decides
                post(_Failed(exc))
            finally:
                stream.close()
                self._count(-1)
                try:
                    loop.call_soon_threadsafe(self.slots.release)  # the slot is free once the run ends
                except RuntimeError:
                    pass
                post(_END)

        await self.slots.acquire()
        threading.Thread(target=work, name="serve-agent", daemon=True).start()
        try:
            while (item := await inbox.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            cancel.set()  # the client left or the run ended: stop what still runs


def build_app(
    agent: Any,
    api_key: str = "",
    model_id: str = "polymodal",
    max_body_bytes: int = 8 * 2**20,
    slots: int | None = None,
) -> Any:
    app = FastAPI(title="polymodal", docs_url=None, redoc_url=None, openapi_url=None)
    runner = AgentRunner(agent, slots or agent_slots(agent))
    media = MediaStore()
    uploads = Uploads()
    started = int(time.time())
    app.state.runner = runner

    def problem(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        return JSONResponse(error_body(message, kind, code), status_code=status)

    def unauthorized(request: Request):
        if not api_key:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_key.encode()):
            return None
        return problem(401, "invalid or missing API key (send Authorization: Bearer <key>)", code="invalid_api_key")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_id, "tools": sorted(agent.tools), "running": runner.running}

    @app.get("/v1/models")
    async def models(request: Request):
        return unauthorized(request) or {"object": "list", "data": [_model(model_id, started)]}

    @app.get("/v1/models/{name}")
    async def model(name: str, request: Request):
        if denied := unauthorized(request):
            return denied
        if name != model_id:
            return problem(404, f"model '{name}' not found: this server offers '{model_id}'", code="model_not_found")
        return _model(model_id, started)

    @app.get("/v1/media/{token}/{name}")
    async def media_file(token: str, name: str):
        path = media.path(token)
        if path is None or path.name != name:
            return problem(404, "no such file", code="not_found")
        return FileResponse(path)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        if denied := unauthorized(request):
            return denied
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return problem(413, f"request body is larger than {max_body_bytes} bytes", code="request_too_large")
        try:
            req = parse_chat_request(_json(body), model_id)
        except InputError as exc:
            return problem(400, str(exc))
        if req.model != model_id:
            return problem(404, f"model '{req.model}' not found: this server offers '{model_id}'", "model_not_found")
        base = str(request.base_url)
        try:
            image = uploads.save(req.image) if req.image is not None else None
        except InputError as exc:
            return problem(400, str(exc))
        cancel = threading.Event()
        events = runner.events(req.text, req.history, cancel, image)
        urls = {image: media.url(image, base)} if image else {}
        if req.stream:
            return StreamingResponse(_stream(events, req, base, media, runner, urls), media_type="text/event-stream")
        try:
            return await _complete(events, req, base, media, runner, urls)
        except PolymodalError as exc:
            return problem(503, str(exc), "server_error", "agent_error")

    return app


class Uploads:
    """Images clients attach, kept in a private folder for this server's life (the agent reads a path)."""

    def __init__(self) -> None:
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="polymodal-serve-")
        self.folder = Path(self._dir.name)

    def save(self, data: bytes) -> str:
        from PIL import Image, UnidentifiedImageError

        from polymodal.fsutil import atomic_write_bytes

        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
                suffix = "." + (img.format or "png").lower()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise InputError("the attached image is not a readable image") from None
        name = hashlib.sha256(data).hexdigest()[:20] + suffix
        return str(atomic_write_bytes(self.folder / name, data))


def _model(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "polymodal"}


class _TooLarge(Exception):
    pass


async def _read_body(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not valid JSON: {exc}") from None


def _step_urls(event: Any, base: str, media: MediaStore, urls: dict[str, str]) -> None:
    from orchestrator.events import StepFinished

    if isinstance(event, StepFinished):
        for path in event.result.artifacts:
            urls.setdefault(path, media.url(path, base))


def _finish(result: Any, req: Any, urls: dict[str, str], runner: AgentRunner, shown: str) -> tuple[dict, str]:
    """The extra field and the images still to show; the exchange is remembered as the client saw it."""
    from orchestrator.conversation import Turn

    extra = result_extra(result, urls)
    tail = image_markdown(extra, shown)
    runner.memory.remember(req.text, shown + tail, Turn.from_result(req.text, None, result))
    return extra, tail


async def _complete(
    events: AsyncIterator[Any], req: Any, base: str, media: MediaStore, runner: AgentRunner, urls: dict[str, str]
) -> dict:
    from orchestrator.events import Done

    result = None
    async for event in events:
        _step_urls(event, base, media, urls)
        if isinstance(event, Done):
            result = event.result
    assert result is not None
    answer = PathRewriter.whole(result.answer, urls)
    extra, tail = _finish(result, req, urls, runner, answer)
    return Reply(req.model).completion(answer + tail, extra)


async def _stream(
    events: AsyncIterator[Any], req: Any, base: str, media: MediaStore, runner: AgentRunner, urls: dict[str, str]
) -> AsyncIterator[str]:
    from orchestrator.events import AnswerToken, Done, StepFinished, StepProgress, StepStarted

    reply = Reply(req.model)
    rewriter = PathRewriter(urls)
    shown: list[str] = []

    def sse(obj: dict) -> str:
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    yield sse(reply.chunk({"role": "assistant", "content": ""}))
    try:
        async for event in events:
            _step_urls(event, base, media, urls)
            rewriter.urls = urls
            if isinstance(event, AnswerToken):
                if piece := rewriter.feed(event.text):
                    shown.append(piece)
                    yield sse(reply.chunk({"content": piece}))
            elif isinstance(event, (StepStarted, StepProgress, StepFinished)):  # long work shows progress
                yield sse(reply.chunk({}, None, {"event": _step_event(event, urls)}))
            elif isinstance(event, Done):
                if rest := rewriter.flush():
                    shown.append(rest)
                    yield sse(reply.chunk({"content": rest}))
                extra, tail = _finish(event.result, req, urls, runner, "".join(shown))
                if tail:
                    yield sse(reply.chunk({"content": tail}))
                yield sse(reply.chunk({}, "stop", extra))
    except PolymodalError as exc:  # the stream has started: the error goes in it, as OpenAI does
        yield sse(error_body(str(exc), "server_error", "agent_error"))
    yield "data: [DONE]\n\n"


def _step_event(event: Any, urls: dict[str, str]) -> dict[str, Any]:
    from orchestrator.events import StepFinished, StepProgress

    if isinstance(event, StepProgress):
        return {"kind": event.kind, "step": event.step_id, "fraction": event.fraction, "message": event.message}
    if isinstance(event, StepFinished):
        r = event.result
        return {"kind": event.kind, "step": r.step_id, "tool": r.tool, "ok": r.ok, "error": r.error}
    from tools.base import to_plain

    args = to_plain(event.args)
    return swap_paths({"kind": event.kind, "step": event.step_id, "tool": event.tool, "args": args}, urls)


def run_server(app: Any, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn handles both)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )  # open streams get 5 s to finish on Ctrl-C
    uvicorn.Server(config).run()
