"""`polymodal mcp`: every tool the agent has, offered to MCP clients (Claude Desktop, Cursor, LangChain
MCP adapters) with the official `mcp` SDK, over stdio or streamable HTTP. A tool's MCP input schema
is its own `input_schema`; a result comes back as text (its summary) plus structured content
(the result as JSON, citations, artifacts, provenance). A bad argument or a failure the user can
fix is an MCP error result (`isError`), never a crash. A tool's progress reports go to the client as
MCP progress notifications when it asked for them.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any, Mapping

from polymodal.errors import PolymodalError

__all__ = ["build_mcp_server", "run_stdio", "run_http", "result_content"]

log = logging.getLogger("polymodal.mcp")

_INLINE_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_INLINE_MAX_BYTES = 2 * 2**20


def result_content(tool: str, value: Any) -> tuple[str, dict[str, Any], list[Path]]:
    """(text, structured content, images small enough to send inline) of a tool's result."""
    from tools.base import read_result, to_plain

    view = read_result(value)
    structured = {
        "tool": tool,
        "ok": view.ok,
        "summary": view.summary,
        "citations": to_plain(view.citations),
        "artifacts": view.artifacts,
        "provenance": view.provenance,
        "result": to_plain(value),
    }
    images = [
        p
        for p in map(Path, view.artifacts)
        if p.suffix.lower() in _INLINE_IMAGES and p.is_file() and p.stat().st_size <= _INLINE_MAX_BYTES
    ]
    return view.summary, structured, images[:4]


def build_mcp_server(tools: Mapping[str, Any], name: str = "polymodal") -> Any:
    """An MCP low-level `Server` over `tools` (name -> `tools.base.Tool`)."""
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from tools.base import ToolContext

    def failed(message: str) -> Any:
        return types.CallToolResult(content=[types.TextContent(text=" ".join(message.split()))], is_error=True)

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t.name, description=t.describe(), input_schema=t.input_schema) for t in tools.values()
            ]
        )

    async def call_tool(ctx: Any, params: Any) -> Any:
        tool = tools.get(params.name)
        if tool is None:
            return failed(f"unknown tool '{params.name}': this server offers {', '.join(sorted(tools))}")

        def progress(fraction: float, message: str) -> None:  # called from the tool's thread
            try:
                anyio.from_thread.run(ctx.session.report_progress, fraction, 1.0, message or None)
            except Exception:  # noqa: BLE001 - progress is best effort: a gone client must not fail the tool
                log.debug("progress not delivered", exc_info=True)

        context = ToolContext(progress=progress)
        try:
            value = await anyio.to_thread.run_sync(
                lambda: tool(dict(params.arguments or {}), context), abandon_on_cancel=True
            )
        except PolymodalError as exc:
            return failed(str(exc))
        except anyio.get_cancelled_exc_class():
            context.cancel.set()
            raise
        text, structured, images = result_content(tool.name, value)
        if not structured["ok"]:
            return failed(f"{tool.name} failed: {text}")
        content: list[Any] = [types.TextContent(text=text)]
        content += [
            types.ImageContent(
                data=base64.b64encode(p.read_bytes()).decode(), mime_type=_INLINE_IMAGES[p.suffix.lower()]
            )
            for p in images
        ]
        return types.CallToolResult(content=content, structured_content=structured)

    return Server(
        name,
        instructions="polymodal's tools: cited knowledge-base answers, image search and generation, edge devices.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def run_stdio(server: Any) -> None:
    """Serve one client over this process's stdin/stdout (stdout carries only the protocol)."""
    import anyio
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def run_http(server: Any, host: str, port: int) -> None:
    """Serve streamable HTTP at http://host:port/mcp until Ctrl-C or SIGTERM."""
    import uvicorn

    app = server.streamable_http_app(host=host)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)).run()
