"""Tools of an MCP server as polymodal tools: each MCP tool's name, description and inputSchema
become a `Tool` the router and planner see like any other (`[[mcp.servers]]` in the config).

    tools = mcp_tools(McpServerConfig(name="weather", command="python", args=["weather_server.py"]))

One session per server stays open on a background event loop (a stdio server is started once, a
URL is reached over streamable HTTP); a broken session is reopened once: a restarted server is
harmless. A server that cannot be reached is a one-line `ToolError`; an MCP error result is a
failed result (`ok=False`), not an exception.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from polymodal.errors import MissingExtra, ToolError
from tools.base import Tool, ToolResult

__all__ = ["McpServer", "McpTool", "McpToolResult", "mcp_tools"]


@dataclass
class McpToolResult(ToolResult):
    """What an MCP tool returned: its text, its structured content, and where it came from."""

    server: str
    tool: str
    text: str
    structured: Any = None
    ok: bool = True
    error: str = ""
    time: str = ""
    images: list[str] = field(default_factory=list)  # mime types of inline images (not kept)

    def summary(self) -> str:
        return self.text if self.ok else f"{self.tool} on MCP server '{self.server}' failed: {self.error}"

    @property
    def citations(self) -> list[Any]:  # a polymodal MCP server sends its citations structured
        found = self.structured.get("citations") if isinstance(self.structured, dict) else None
        return list(found) if isinstance(found, list) else []

    def provenance(self) -> dict[str, str]:
        return {"mcp_server": self.server, "tool": self.tool, "time": self.time}


class McpServer:
    """How to reach one MCP server: `command` + `args` (stdio) or `url` (streamable HTTP)."""

    def __init__(
        self, name: str, command: str = "", args: list[str] | None = None, url: str = "", timeout_s: float = 30.0
    ) -> None:
        if bool(command) == bool(url):
            raise ToolError(f"MCP server '{name}' needs exactly one of command or url")
        self.name, self.command, self.args, self.url, self.timeout_s = name, command, list(args or []), url, timeout_s
        self._lock = threading.Lock()
        self._connection: _Connection | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> "McpServer":
        """From a `polymodal.config.McpServerConfig`."""
        return cls(cfg.name, cfg.command, list(cfg.args), cfg.url, cfg.timeout_s)

    @property
    def where(self) -> str:
        return self.url or " ".join([self.command, *self.args])

    def _target(self) -> Any:
        if self.url:
            return self.url
        from mcp.client.stdio import StdioServerParameters

        return StdioServerParameters(command=self.command, args=self.args)

    def session(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run `work(client)` on this server's open session (opened on first use, reopened once if it
        broke); any failure to reach the server is one `ToolError` line."""
        try:
            from mcp import Client
        except ImportError as exc:
            raise MissingExtra("serve", "mcp", "MCP servers' tools") from exc
        with self._lock:
            if self._connection is None:
                self._connection = _Connection(
                    lambda: Client(self._target(), read_timeout_seconds=self.timeout_s), self.timeout_s
                )
        for attempt in (1, 2):
            try:
                return self._connection.call(work)
            except Exception as exc:  # noqa: BLE001 - the transport's errors, mapped once here
                if attempt == 1 and not isinstance(exc, TimeoutError):  # a slow call is not sent twice
                    self._connection.close()  # e.g. the server restarted between calls: one new session
                    continue
                raise ToolError(f"MCP server '{self.name}' ({self.where}) is not reachable: {_reason(exc)}") from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def list_tools(self) -> list[Any]:
        async def work(client: Any) -> list[Any]:
            return list((await client.list_tools()).tools)

        return self.session(work)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        async def work(client: Any) -> Any:
            return await client.call_tool(name, arguments)

        return self.session(work)


class _Connection:
    """One session kept open on a background event loop: the session's owner task opens the client and
    runs each call as a task beside it (anyio wants a session closed by the task that opened it)."""

    def __init__(self, open_client: Callable[[], Any], timeout_s: float) -> None:
        self._open = open_client
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue | None = None
        self._owner: concurrent.futures.Future | None = None

    @property
    def alive(self) -> bool:
        return self._owner is not None and not self._owner.done()

    def call(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        with self._lock:
            if not self.alive:
                self._start()
            done: concurrent.futures.Future = concurrent.futures.Future()
            assert self._loop is not None and self._inbox is not None
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, (work, done))
        return done.result(timeout=self._timeout + 5)

    def close(self) -> None:
        with self._lock:
            if self.alive and self._loop is not None and self._inbox is not None:
                self._loop.call_soon_threadsafe(self._inbox.put_nowait, None)
                with contextlib.suppress(Exception):
                    self._owner.result(timeout=5)

    def _start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="mcp-client", daemon=True).start()
            atexit.register(self.close)
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._owner = asyncio.run_coroutine_threadsafe(self._serve(ready), self._loop)
        try:
            ready.result(timeout=self._timeout)  # the connection's own error, if it could not open
        except concurrent.futures.TimeoutError:
            self._owner.cancel()
            raise TimeoutError from None

    async def _serve(self, ready: concurrent.futures.Future) -> None:
        import anyio

        inbox: asyncio.Queue = asyncio.Queue()
        try:  # no cancel scope around it: the session's task groups outlive this statement
            client = await self._open().__aenter__()
        except BaseException as exc:
            ready.set_exception(exc if isinstance(exc, Exception) else ToolError("connection cancelled"))
            raise
        try:
            async with anyio.create_task_group() as calls:
                self._inbox = inbox
                ready.set_result(None)
                while (item := await inbox.get()) is not None:
                    calls.start_soon(self._one, client, *item)
        finally:
            while not inbox.empty():  # calls that never started fail rather than hang
                item = inbox.get_nowait()
                if item is not None and not item[1].done():
                    item[1].set_exception(ToolError("connection closed"))
            with contextlib.suppress(BaseException):
                await client.__aexit__(None, None, None)

    async def _one(self, client: Any, work: Callable[[Any], Awaitable[Any]], done: concurrent.futures.Future) -> None:
        import anyio

        try:
            with anyio.fail_after(self._timeout):
                done.set_result(await work(client))
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            done.set_exception(exc)
        except BaseException:
            if not done.done():
                done.set_exception(ToolError("connection closed"))
            raise


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # anyio task groups wrap the cause
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


class McpTool(Tool):
    """One tool of an MCP server. Its input schema is the server's; the router reads its description."""

    def __init__(self, server: McpServer, name: str, description: str, input_schema: dict[str, Any]) -> None:
        super().__init__()
        self.server = server
        self.name = name
        self.description = " ".join((description or f"{name} (MCP server {server.name})").split())
        schema = {k: v for k, v in dict(input_schema or {}).items() if k in ("type", "properties", "required")}
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        schema["additionalProperties"] = False
        self._schema = schema

    @property
    def input_schema(self) -> dict[str, Any]:
        return self._schema

    def run(self, **arguments: Any) -> McpToolResult:
        arguments.pop("context", None)
        result = self.server.call_tool(self.name, arguments)
        text = "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text").strip()
        images = [c.mime_type for c in result.content if getattr(c, "type", "") == "image"]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if result.is_error:
            return McpToolResult(self.server.name, self.name, text, None, False, text or "error", stamp, images)
        return McpToolResult(self.server.name, self.name, text, result.structured_content, time=stamp, images=images)


def mcp_tools(cfg: Any) -> list[McpTool]:
    """The tools one configured MCP server offers now (`cfg`: a `McpServerConfig`)."""
    server = McpServer.from_config(cfg)
    return [McpTool(server, t.name, t.description or "", t.input_schema) for t in server.list_tools()]
