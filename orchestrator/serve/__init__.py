"""The agent's faces for other clients: `http.py` (an OpenAI-compatible API over the `wire.py`
format, `polymodal serve`) and `mcp_server.py` (the tools over MCP, `polymodal mcp`). Importing
this package imports neither FastAPI nor the MCP SDK; the commands do, when they run."""
