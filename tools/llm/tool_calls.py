"""Tool calling over any chat model that takes a JSON schema: the tools are listed in a system message
and the reply is held by a schema (a grammar on llama.cpp) to either `{"answer": "..."}` or
`{"tool_calls": [{"name": ..., "arguments": {...}}]}`. No model library and no LangChain here: the
LangChain adapter (`tools.llm.langchain`) turns these into `AIMessage.tool_calls`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ToolSpec", "reply_schema", "tools_prompt", "parse_reply"]

ToolSpec = dict[str, Any]  # {"name", "description", "parameters": JSON schema}


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    params = tool.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": tool["name"]}, "arguments": params},
        "required": ["name", "arguments"],
    }


def reply_schema(tools: list[ToolSpec], choice: str | None = None) -> dict[str, Any]:
    """The schema a reply follows. `choice`: None/"auto" (answer or call), "any"/"required" (call
    some tool), "none" (answer), or a tool name (call that one)."""
    answer = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    if choice == "none" or not tools:
        return answer
    chosen = [t for t in tools if t["name"] == choice] or tools
    calls = {
        "type": "object",
        "properties": {
            "tool_calls": {"type": "array", "minItems": 1, "items": {"anyOf": [_call_schema(t) for t in chosen]}}
        },
        "required": ["tool_calls"],
    }
    return {"anyOf": [answer, calls]} if choice in (None, "auto") else calls


def tools_prompt(tools: list[ToolSpec], choice: str | None = None) -> str:
    """The system text that lists the tools and the reply format."""
    listed = json.dumps(
        [
            {"name": t["name"], "description": t.get("description", ""), "parameters": t.get("parameters")}
            for t in tools
        ],
        ensure_ascii=False,
    )
    must = ""
    if choice in ("any", "required"):
        must = " You must call a tool."
    elif choice not in (None, "auto", "none"):
        must = f" You must call the tool {choice}."
    return (
        f"You can call these tools: {listed}\n"
        'Reply with JSON only: {"tool_calls": [{"name": "<tool>", "arguments": {...}}]} to call tools, '
        'or {"answer": "<text>"} to reply without one. After a tool result, answer with it.' + must
    )


def parse_reply(text: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """(text answer, [(tool name, arguments)]) from a reply; text that is not the expected JSON (a
    reply cut short by max_tokens) comes back as the answer, with no calls."""
    try:
        data = json.loads(text)
    except ValueError:
        return text, []
    if not isinstance(data, dict):
        return text, []
    calls = [
        (str(c["name"]), c.get("arguments") if isinstance(c.get("arguments"), dict) else {})
        for c in data.get("tool_calls") or []
        if isinstance(c, dict) and c.get("name")
    ]
    answer = data.get("answer")
    return (answer if isinstance(answer, str) else ("" if calls else text)), calls
