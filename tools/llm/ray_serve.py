"""The chat model as a Ray Serve application: `replicas` copies of the configured backend, each in its
own Ray actor with its share of the CPUs and at most one request at a time, behind an
OpenAI-compatible HTTP surface (/v1/chat/completions, streamed or not; /v1/models) on Serve's proxy,
127.0.0.1 by default. The agent reaches it over HTTP (the `openai` backend at `url`) or through a
Serve handle (the `ray-serve` backend, tools/llm/ray_handle.py). Imports Ray and FastAPI: only what
deploys imports this module.

    connect("auto")                                            # polymodal.cluster
    served = deploy_llm(config.llm, config.paths.cache(), replicas=2)
    served.url                                                 # http://127.0.0.1:8001/v1
    undeploy_llm(served.app)
"""

# no `from __future__ import annotations`: FastAPI must see the endpoints' real types (`Request`)
# through Serve's ingress wrapper, which evaluates string annotations elsewhere
import asyncio
import dataclasses
import hmac
import ipaddress
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.exceptions import RayServeException

from polymodal.errors import ConfigError, InputError, ModelUnavailable, PolymodalError
from tools.llm.base import Capabilities, GenerationStats, Message
from tools.llm.ray_handle import DEFAULT_APP
from tools.llm.wire import Reply, check_messages, error_body, parse_llm_request, sse

__all__ = ["DEFAULT_PORT", "LLMReplica", "ServedLLM", "deploy_llm", "undeploy_llm"]

DEFAULT_PORT = 8001  # beside `polymodal serve` (8000), which may use this LLM
MAX_BODY_BYTES = 4 * 2**20
_END = object()

_http = FastAPI(title="polymodal LLM", docs_url=None, redoc_url=None, openapi_url=None)

# The helpers the replica class uses come before it: Serve pickles the class, by value, as it is decorated.


def _problem(status: int, message: str, code: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(error_body(message, kind, code), status_code=status)


async def _json_body(request: Request) -> Any:
    import json

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise InputError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InputError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not valid JSON: {exc}") from None


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def _in_thread(
    run: Callable[[], Iterator[str]], last_stats: Callable[[], GenerationStats] | None
) -> AsyncIterator[str | GenerationStats]:
    """The pieces of `run()`, made in one thread of their own (the event loop stays free and the
    backend's per-thread `last_stats` is read where the call ran), then that call's stats. When the
    consumer leaves (the client hung up), the generation stops at its next piece."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def post(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:  # the loop closed (the replica is shutting down)
            pass

    def work() -> None:
        pieces: Iterator[str] | None = None
        try:
            pieces = run()
            for piece in pieces:
                if stop.is_set():
                    break
                post(piece)
            if last_stats is not None and not stop.is_set():
                post(last_stats())
        except BaseException as exc:  # noqa: BLE001 - handed to the request, which answers with it
            post(_Failed(exc))
        finally:
            close = getattr(pieces, "close", None)  # a generator: free the model now
            if close is not None:
                close()
            post(_END)

    threading.Thread(target=work, name="llm-replica", daemon=True).start()
    try:
        while (item := await inbox.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()


@serve.deployment(name="llm", max_ongoing_requests=1)
@serve.ingress(_http)
class LLMReplica:
    """One replica: its own chat model (`llm`, an LLMConfig as a dict, threads included), loaded at
    start so the first request does not pay for it. Serve sends it one request at a time
    (`max_ongoing_requests=1`): the others wait at the router for a free replica."""

    def __init__(self, llm: dict[str, Any], cache_dir: str | None, model_id: str, api_key: str = "") -> None:
        from polymodal.config import LLMConfig
        from tools.llm.registry import get_chat_model

        self.llm = get_chat_model(LLMConfig(**llm), cache_dir)
        self.last_stats = Capabilities.of(self.llm).last_stats
        self.model_id = model_id
        self.max_tokens = max(1, int(llm.get("n_ctx") or 4096))
        self._key = api_key
        self.where = {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "threads": llm.get("n_threads"),
        }
        self.llm.generate([{"role": "user", "content": "Hi"}], max_tokens=1)  # load the weights now

    # -- the Serve-handle face (RayServeChatModel) --------------------------------------------
    def generate(self, messages: list[Message], options: dict[str, Any]) -> dict[str, Any]:
        text = self.llm.generate(check_messages(messages), **options)
        stats = self.last_stats() if self.last_stats else None
        return {"text": text, "stats": dataclasses.asdict(stats) if stats else None, **self.where}

    def stream(self, messages: list[Message], options: dict[str, Any]) -> Iterator[str]:
        yield from self.llm.stream(check_messages(messages), **options)

    # -- the HTTP face (OpenAI-compatible) ---------------------------------------------------
    @_http.get("/v1/models")
    def models(self, request: Request) -> Any:
        model = {"id": self.model_id, "object": "model", "created": 0, "owned_by": "polymodal"}
        return self._denied(request) or {"object": "list", "data": [model]}

    @_http.post("/v1/chat/completions")
    async def chat(self, request: Request) -> Any:
        if denied := self._denied(request):
            return denied
        try:
            req = parse_llm_request(await _json_body(request), self.max_tokens)
        except InputError as exc:
            return _problem(400, str(exc))
        if req.model != self.model_id:
            return _problem(404, f"model '{req.model}' not found: this server offers '{self.model_id}'", "not_found")
        if req.stream:
            run = lambda: self.llm.stream(req.messages, **req.options())  # noqa: E731
            return StreamingResponse(self._events(run, req.include_usage), media_type="text/event-stream")
        whole = lambda: iter([self.llm.generate(req.messages, **req.options())])  # noqa: E731
        pieces: list[str] = []
        stats = None
        try:
            async for item in _in_thread(whole, self.last_stats):
                if isinstance(item, GenerationStats):
                    stats = item
                else:
                    pieces.append(item)
        except InputError as exc:
            return _problem(400, str(exc))
        except PolymodalError as exc:
            return _problem(503, str(exc), "model_error", "server_error")
        return Reply(self.model_id).completion("".join(pieces), self.where, stats)

    async def _events(self, run: Callable[[], Iterator[str]], include_usage: bool) -> AsyncIterator[str]:
        reply = Reply(self.model_id)
        yield sse(reply.chunk({"role": "assistant", "content": ""}))
        stats = None
        try:
            async for item in _in_thread(run, self.last_stats):
                if isinstance(item, GenerationStats):
                    stats = item
                else:
                    yield sse(reply.chunk({"content": item}))
            yield sse(reply.chunk({}, "stop", self.where))
            if include_usage:
                yield sse(reply.usage_chunk(stats))
        except PolymodalError as exc:  # the stream has started: the error goes in it, as OpenAI does
            yield sse(error_body(str(exc), "server_error", "model_error"))
        yield "data: [DONE]\n\n"

    def _denied(self, request: Request) -> JSONResponse | None:
        if not self._key:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._key.encode()):
            return None
        return _problem(401, "invalid or missing API key (send Authorization: Bearer <key>)", code="invalid_api_key")


@dataclass
class ServedLLM:
    """Where a deployed LLM answers, and how it runs."""

    app: str
    model: str  # the id clients name (`model` in a request; `[llm] model` for the openai backend)
    url: str | None  # the OpenAI base URL (None: handle only, no HTTP route)
    replicas: int
    threads: int  # per replica
    backend: str


def deploy_llm(
    llm_config: Any,
    cache_dir: str | Path | None = None,
    *,
    replicas: int = 1,
    threads: int = 0,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    app: str = DEFAULT_APP,
    route_prefix: str | None = "/",
    model_id: str = "",
    api_key: str = "",
    timeout_s: float = 900.0,
    progress: Callable[[int, int], None] | None = None,
) -> ServedLLM:
    """Deploy (or redeploy) the LLM app on the connected Ray cluster and wait until every replica runs.

    threads: per replica; 0 = the cluster's CPUs shared out (`_cpu_share`). Serve's HTTP proxy listens on
    `host:port` of the head node; a non-loopback host needs an `api_key`.
    """
    if replicas < 1:
        raise ConfigError("an LLM deployment needs at least one replica")
    if llm_config.backend == "ray-serve":
        raise ConfigError("the replicas cannot run the ray-serve backend (it would call itself): choose another")
    if not _is_loopback(host) and not api_key:
        raise ConfigError(f"serving the LLM on {host} needs an API key")
    threads, num_cpus = _cpu_share(replicas, threads)
    cfg = dataclasses.replace(llm_config, n_threads=threads)
    model_id = model_id or Path(cfg.model).name or cfg.backend
    if route_prefix is not None:
        _start_serve(host, port)
    target = LLMReplica.options(num_replicas=replicas, ray_actor_options={"num_cpus": num_cpus}).bind(
        dataclasses.asdict(cfg), str(cache_dir) if cache_dir else None, model_id, api_key
    )
    try:
        serve._run(target, _blocking=False, name=app, route_prefix=route_prefix)  # waited for below, with a limit
    except (RayServeException, ValueError) as exc:  # a route another app holds, a bad name
        raise ConfigError(f"Ray Serve refused the LLM app '{app}': {_first_line(exc)}") from None
    try:
        _wait_running(app, replicas, timeout_s, progress)
    except BaseException:
        undeploy_llm(app)
        raise
    url = f"http://{host}:{port}{(route_prefix or '').rstrip('/')}/v1" if route_prefix is not None else None
    return ServedLLM(app, model_id, url, replicas, threads, cfg.backend)


def undeploy_llm(app: str = DEFAULT_APP, timeout_s: float = 60.0) -> bool:
    """Delete the app; Serve itself (and its HTTP port) goes too when no other app is left. False
    when the cluster did not confirm within `timeout_s` (a cluster going down never answers)."""
    done = threading.Event()

    def work() -> None:
        try:
            serve.delete(app)
            if not serve.status().applications:
                serve.shutdown()
        except (ray.exceptions.RayError, RayServeException, ConnectionError):
            pass  # the cluster is gone already
        finally:
            done.set()

    threading.Thread(target=work, name="llm-undeploy", daemon=True).start()
    return done.wait(timeout_s)


def _cpu_share(replicas: int, threads: int) -> tuple[int, float]:
    """(threads, CPUs reserved) per replica: the cluster's CPUs shared out, at least one thread and
    no more than the largest node has (a replica lives on one node). The reservation is the thread
    count, smaller when replicas outnumber CPUs, so every replica still gets placed."""
    nodes = [float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n["Alive"]]
    total, largest = sum(nodes) or 1.0, max(nodes, default=1.0) or 1.0
    threads = threads or max(1, int(min(largest, total // replicas)))
    return threads, min(float(threads), largest, total / replicas)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _start_serve(host: str, port: int) -> None:
    """Start Serve with its HTTP proxy on `host:port` (the head node only); Serve already running
    with another address is an error: its HTTP options are fixed once started."""
    try:
        serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
    except (TimeoutError, ray.exceptions.RayError) as exc:
        raise ConfigError(f"Ray Serve could not start its HTTP proxy on {host}:{port}: {_first_line(exc)}") from None
    from ray.serve.context import _get_global_client  # the running Serve's HTTP options; no public API has them

    running = _get_global_client().http_config
    if (running.host, running.port) != (host, port):
        raise ConfigError(
            f"Ray Serve already runs on this cluster with its HTTP proxy on {running.host}:{running.port}: "
            f"use that host and port (Serve's HTTP options are fixed once it starts)"
        )


def _wait_running(app: str, replicas: int, timeout_s: float, progress: Callable[[int, int], None] | None) -> None:
    deadline = time.monotonic() + timeout_s
    shown = -1
    message = ""
    while time.monotonic() < deadline:
        status = serve.status().applications.get(app)
        if status is not None:
            message = status.message or next((d.message for d in status.deployments.values() if d.message), "")
            if status.status == "RUNNING":
                return
            if status.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise ModelUnavailable(f"the LLM replicas failed to start: {_last_line(message)}")
            ready = sum(d.replica_states.get("RUNNING", 0) for d in status.deployments.values())
            if progress is not None and ready != shown:
                progress(ready, replicas)
                shown = ready
        time.sleep(0.5)
    raise ModelUnavailable(f"the LLM replicas were not running after {timeout_s:.0f}s: {_last_line(message)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _last_line(message: str) -> str:
    """The exception line of a replica's traceback (what failed), without the module path."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "no message"
    name, sep, rest = lines[-1].partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {rest}" if sep and "." in name and " " not in name else lines[-1]
