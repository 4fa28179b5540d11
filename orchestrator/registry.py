"""The default tool set, built from config. Each tool's module is imported lazily inside a guard:
a tool whose module, extra or weights are missing is reported as a `ToolProblem`, not fatal.
The tools of each `[[mcp.servers]]` entry join them (`tools.mcp_client`); a server down is a problem too.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any

from polymodal.errors import PolymodalError

__all__ = ["DEFAULT_TOOLS", "ToolProblem", "default_tools", "as_tool"]

log = logging.getLogger(__name__)

# tool name -> module that defines it (the Tool subclass with that `name` is found in the module)
DEFAULT_TOOLS: dict[str, str] = {
    "rag_answer": "tools.rag",
    "image_search": "tools.image_search",
    "generate_image": "tools.generate",
    "edge_query": "tools.edge_query",
}


@dataclass
class ToolProblem:
    tool: str
    reason: str


def default_tools(config: Any = None, models: Any = None) -> tuple[list[Any], list[ToolProblem]]:
    """(tools that could be built, problems of those that could not)."""
    if config is None:
        from polymodal.config import load_config

        config = load_config()
    tools: list[Any] = []
    problems: list[ToolProblem] = []
    for name, module_name in DEFAULT_TOOLS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            problems.append(ToolProblem(name, f"module {exc.name} is not installed"))
            continue
        except PolymodalError as exc:
            problems.append(ToolProblem(name, str(exc)))
            continue
        cls = _find_tool_class(module, name)
        if cls is None:
            problems.append(ToolProblem(name, f"{module_name} defines no tool named '{name}'"))
            continue
        try:
            tools.append(cls.from_config(config, models=models))
        except PolymodalError as exc:
            problems.append(ToolProblem(name, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one broken tool must not stop the agent starting
            log.exception("building tool %s failed", name)
            problems.append(ToolProblem(name, f"could not be built: {type(exc).__name__}: {exc}"))
    from polymodal.config import Config

    for server in config.mcp.servers if isinstance(config, Config) else ():
        _add_mcp_tools(server, tools, problems)
    return tools, problems


def _add_mcp_tools(server: Any, tools: list[Any], problems: list[ToolProblem]) -> None:
    """The tools of one `[[mcp.servers]]` entry; a server that is down is a problem, not fatal."""
    from tools.mcp_client import mcp_tools

    try:
        offered = mcp_tools(server)
    except PolymodalError as exc:
        problems.append(ToolProblem(f"mcp:{server.name}", str(exc)))
        return
    taken = {t.name for t in tools}
    for tool in offered:
        if tool.name in taken:
            problems.append(ToolProblem(tool.name, f"MCP server '{server.name}' offers a tool name already taken"))
        else:
            tools.append(tool)


def _find_tool_class(module: Any, name: str) -> type | None:
    from tools.base import Tool

    for obj in vars(module).values():
        if (
            inspect.isclass(obj)
            and issubclass(obj, Tool)
            and getattr(obj, "name", "") == name
            and obj.__module__ == module.__name__
        ):
            return obj
    return None


def as_tool(obj: Any) -> Any:
    """A `Tool`, a typed function, or a LangChain `BaseTool` -> a `Tool`."""
    from tools.base import FunctionTool, LangChainTool, Tool

    if isinstance(obj, Tool):
        return obj
    if hasattr(obj, "invoke") and hasattr(obj, "get_input_schema") and hasattr(obj, "name"):
        return LangChainTool(obj)
    if callable(obj):
        return FunctionTool(obj)
    raise TypeError(f"cannot use {obj!r} as a tool: pass a Tool, a typed function or a LangChain BaseTool")
