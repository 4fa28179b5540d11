"""A tiny MCP server (the SDK's MCPServer) the client tests start over stdio or streamable HTTP."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("weather")


@server.tool()
def get_forecast(city: str, days: int = 1) -> str:
    """Weather forecast for a city: temperature and rain for the coming days."""
    if city.lower() == "atlantis":
        raise ToolError("no forecast for Atlantis")
    return f"{city}: sunny, 21 C for {days} day(s)"


if __name__ == "__main__":
    if len(sys.argv) > 1:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
    else:
        server.run()
