"""Tools of an MCP server as polymodal tools: each MCP tool's name, description and inputSchema
become a `Tool` the router and planner see like any other (`[[mcp.servers]]` in the config).

    tools = mcp_tools(McpServerConfig(name="weather", command="python", args=["weather_server.py"]))

Each call opens its own session (a stdio server is started for it; a URL is reached over
streamable HTTP), so a server restarted between calls is harmless. A server that cannot be reached
is a one-line `ToolError`; an MCP error result is a failed result (`ok=False`), not an exception.
"""

from __future__ import annotations

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
        """Run `work(client)` in a fresh session; any failure to reach the server is one `ToolError` line."""
        try:
            import anyio
            from mcp import Client
        except ImportError as exc:
            raise MissingExtra("serve", "mcp", "MCP servers' tools") from exc

        async def main() -> Any:
            with anyio.fail_after(self.timeout_s):
                async with Client(self._target(), read_timeout_seconds=self.timeout_s) as client:
                    return await work(client)

        try:
            return anyio.run(main)
        except Exception as exc:  # noqa: BLE001 - the transport's errors, mapped once here
            raise ToolError(f"MCP server '{self.name}' ({self.where}) is not reachable: {_reason(exc)}") from None

    def list_tools(self) -> list[Any]:
        async def work(client: Any) -> list[Any]:
            return list((await client.list_tools()).tools)

        return self.session(work)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        async def work(client: Any) -> Any:
            return await client.call_tool(name, arguments)

        return self.session(work)


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
