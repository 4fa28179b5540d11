"""Prompts and output schemas for the LLM: the planner (tool list, rules, few-shot plans) and the
combined answer. The planning prefix is fixed for a given tool set, so llama.cpp reuses its KV
cache across requests and only the request itself is prefilled.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from tools.base import PlanExample, main_text_arg

__all__ = ["plan_messages", "plan_examples", "plan_schema", "tool_line", "answer_messages", "chat_messages"]

# Each tool brings its worked plans (`Tool.plan_examples`); a request that needs no tool is
# everyone's, so it lives here.
_CHAT_SHOT = PlanExample("谢谢你！")

_RULES = [
    "Rules:",
    '- Reply with JSON only: {"steps": [{"tool": ..., <its arguments>}]}. Steps are numbered 1, 2, 3 in order.',
    "- One step per task the user asks for. Greetings, thanks and questions about this conversation need no tool: "
    '{"steps": []}.',
    "- Questions about concepts (what is X, explain, summarize, compare) use {questions}, even when X is about "
    "images, cameras, sensors or diffusion.",
    '- To pass an earlier step\'s output, write "$N.field" as the argument value (for example "$1.answer"); '
    "that step then runs after step N.",
    "- Keep argument text in the user's language.",
]


_SHOWN_OUTPUTS = ("answer", "text", "artifacts[]", "data", "summary")


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    return schema.get("type", "any")


def tool_line(tool: Any) -> str:
    schema = tool.input_schema
    req = set(schema.get("required", []))
    params = ", ".join(
        f"{n}{'' if n in req else '?'}: {_type_name(p)}" for n, p in schema.get("properties", {}).items()
    )
    outs = [f for f in tool.output_fields() if f in _SHOWN_OUTPUTS]  # keep the prompt short
    ret = f" -> {', '.join(outs)}" if outs else ""
    return f"- {tool.name}({params}){ret}: {tool.describe()}"


def _render_shot(tools: Mapping[str, Any], example: PlanExample) -> str | None:
    """The example's plan as the model should write it, or None if it names a tool not registered."""
    rendered = []
    steps = example.steps
    for tool_name, roles in steps:
        tool = tools.get(tool_name)
        if tool is None:
            return None
        props = tool.input_schema.get("properties", {})
        args: dict[str, Any] = {}
        deps: list[int] = []
        for role, value in roles.items():
            name = main_text_arg(tool) if role == "main" else role
            if name is None or name not in props:
                return None
            if value.startswith("ref:"):
                _, sid, fld = value.split(":", 2)
                prev = tools.get(steps[int(sid) - 1][0])
                if prev is None or fld not in prev.output_fields():
                    return None
                value = f"${sid}." + fld.replace("[]", "[0]")
                deps.append(int(sid))
            args[name] = value
        missing = [r for r in tool.input_schema.get("required", []) if r not in args]
        if missing:
            return None
        rendered.append(_wire_step(tool, tool_name, args, deps))
    return json.dumps({"steps": rendered}, ensure_ascii=False)  # spaced: compact JSON cost accuracy


# Reserved keys of a step on the wire; a tool with an argument of one of these names keeps the
# nested form {"tool": ..., "args": {...}} (plan_from_json reads both).
WIRE_KEYS = ("tool", "args", "depends_on", "id")


def _flat(tool: Any) -> bool:
    return not any(k in WIRE_KEYS for k in tool.input_schema.get("properties", {}))


def _wire_step(tool: Any, name: str, args: dict[str, Any], deps: list[int]) -> dict[str, Any]:
    """A step as the model writes it: the tool's arguments beside its name, no dependency list
    (a "$N.field" reference is the dependency). Three steps cost ~54 tokens instead of ~82."""
    if _flat(tool):
        return {"tool": name, **args}
    return {"tool": name, "args": args, "depends_on": deps}


def plan_examples(tools: Mapping[str, Any]) -> list[PlanExample]:
    """Every registered tool's worked plans (each once) and the no-tool one; an example that
    ends in English goes last, since a small model copies the language of the nearest example."""
    seen: dict[str, PlanExample] = {}
    for tool in tools.values():
        for ex in tool.plan_examples:
            seen.setdefault(ex.request, ex)
    shots = [*seen.values(), _CHAT_SHOT]
    return sorted(shots, key=lambda ex: ex.request.isascii() and len(ex.steps) > 1)


def plan_messages(
    tools: Mapping[str, Any],
    text: str,
    image: str | None = None,
    history: list[dict[str, str]] | None = None,
    avoid: Sequence[str] = (),
) -> list[dict[str, str]]:
    lines = ["You turn a user request into a plan of tool calls. Tools:"]
    lines += [tool_line(t) for t in tools.values()]
    answers = next((t.name for t in tools.values() if t.cues.questions), None)
    lines.append(
        "\n".join(r.replace("{questions}", answers or "") for r in _RULES if answers or "{questions}" not in r)
    )
    lines.append("Examples:")
    for example in plan_examples(tools):
        plan = _render_shot(tools, example)
        if plan is not None:
            lines.append(f"Request: {example.request}\nPlan: {plan}")
    # live state last, after the fixed prefix (which stays cached), as context rather than as part of the request
    notes = [n for n in (t.planning_note() for t in tools.values()) if n]
    if notes:
        lines.append("Context (use it only when the request asks for it): " + " ".join(notes))
    user = ""
    if history:
        recent = history[-2:]
        user += (
            "Earlier in this conversation:\n" + "\n".join(f"{h['role']}: {h['content'][:200]}" for h in recent) + "\n"
        )
    if image:
        user += f"(The user attached an image: {image})\n"
    if avoid:
        user += f"(The user does not want: {', '.join(avoid)})\n"
    user += f"Request: {text}\nPlan:"
    return [{"role": "system", "content": "\n".join(lines)}, {"role": "user", "content": user}]


def _loose(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter schema that also admits a "$N.field" reference string."""
    if schema.get("type") == "string" or "enum" in schema:
        return {k: v for k, v in schema.items() if k in ("type", "enum")}
    base = {k: v for k, v in schema.items() if k in ("type", "items")}
    return {"anyOf": [base, {"type": "string"}]} if base else {}


def plan_schema(tools: Mapping[str, Any], max_steps: int = 5, min_steps: int = 0) -> dict[str, Any]:
    """JSON schema of a plan, one alternative per tool so each step's args match its tool."""
    alternatives = []
    for name, tool in tools.items():
        schema = tool.input_schema
        props = {k: _loose(v) for k, v in schema.get("properties", {}).items()}
        if _flat(tool):  # "tool" first, so the grammar makes the model name the tool before its arguments
            alternatives.append(
                {
                    "type": "object",
                    "properties": {"tool": {"const": name}, **props},
                    "required": ["tool", *schema.get("required", [])],
                }
            )
            continue
        args = {"type": "object", "properties": props, "required": list(schema.get("required", []))}
        alternatives.append(
            {
                "type": "object",
                "properties": {
                    "tool": {"const": name},
                    "args": args,
                    "depends_on": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["tool", "args", "depends_on"],
            }
        )
    return {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"anyOf": alternatives}, "minItems": min_steps, "maxItems": max_steps}
        },
        "required": ["steps"],
    }


def answer_messages(
    request: str, summaries: list[str], history: list[dict[str, str]] | None = None
) -> list[dict[str, str]]:
    system = (
        "You combine tool results into one short answer for the user (at most 5 sentences). "
        "Use only the results. Keep citation markers such as [1] exactly where they support a sentence. "
        "When a result is a device reading, name the device and the time of the reading. "
        "If a step failed, say so in one sentence. Answer in the language of the request."
    )
    body = f"Request: {request}\nResults:\n" + "\n".join(summaries) + "\nAnswer:"
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def chat_messages(
    request: str, history: list[dict[str, str]] | None = None, tools: Mapping[str, Any] | None = None
) -> list[dict[str, str]]:
    names = ", ".join(sorted(tools)) if tools else "none"
    system = (
        "You are polymodal, a concise assistant. You can answer from a knowledge base, search photos, "
        f"generate images and query edge devices (tools: {names}). Reply briefly in the user's language."
    )
    return [{"role": "system", "content": system}, *(history or [])[-6:], {"role": "user", "content": request}]
