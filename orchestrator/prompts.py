"""Prompts and output schemas for the LLM: the planner (tool list, rules, few-shot plans) and the
combined answer. The planning prefix is fixed for a given tool set, so llama.cpp reuses its KV
cache across requests and only the request itself is prefilled.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Mapping

__all__ = ["plan_messages", "plan_schema", "output_fields", "tool_line", "answer_messages", "chat_messages"]

# Few-shot plans, written once in terms of roles: "main" is the tool's main text argument, "image"
# its image argument, "ref:<field>" a reference to an earlier step's output field.
_SHOTS: list[tuple[str, list[tuple[str, dict[str, str], list[int]]]]] = [
    ("把知识库里关于边缘AI的要点总结一下，再找一张和猫有关的照片",
     [("rag_answer", {"main": "边缘AI的要点"}, []), ("image_search", {"main": "猫"}, [])]),
    ("What is CLIP?", [("rag_answer", {"main": "What is CLIP?"}, [])]),
    ("温室的温度正常吗？顺便画一张温室的插画，再搜一下有没有番茄的照片",
     [("edge_query", {"device": "greenhouse", "capability": "sensor_status"}, []),
      ("generate_image", {"main": "温室的插画"}, []), ("image_search", {"main": "番茄"}, [])]),
    ("谢谢你！", []),
    ("Check what the garden camera sees, then find similar photos in my library",
     [("edge_query", {"device": "garden camera", "capability": "classify"}, []),
      ("image_search", {"main": "ref:1:summary"}, [1])]),
    # English last: a small model copies the language of the nearest example into the arguments
    ("Explain diffusion models from the docs and draw a picture that illustrates the answer",
     [("rag_answer", {"main": "diffusion models"}, []), ("generate_image", {"main": "ref:1:answer"}, [1])]),
]

_RULES = """Rules:
- Reply with JSON only: {"steps": [{"tool": ..., <its arguments>}]}. Steps are numbered 1, 2, 3 in order.
- One step per task the user asks for. Greetings, thanks and questions about this conversation need no tool: {"steps": []}.
- Questions about concepts (what is X, explain, summarize, compare) use rag_answer, even when X is about images, cameras, sensors or diffusion.
- To pass an earlier step's output, write "$N.field" as the argument value (for example "$1.answer"); that step then runs after step N.
- Keep argument text in the user's language."""


_SHOWN_OUTPUTS = ("answer", "text", "artifacts[]", "data", "summary")


def output_fields(tool: Any) -> list[str]:
    """Result fields a later step can reference: "answer", "images[].path", "labels[]" ..."""
    target = getattr(tool, "_target", None)
    try:
        ret = typing.get_type_hints(target() if callable(target) else tool.run).get("return")
    except Exception:  # noqa: BLE001 - unresolvable hints: nothing to offer
        return []
    if ret is None or not dataclasses.is_dataclass(ret):
        return []
    out: list[str] = []
    hints = typing.get_type_hints(ret)
    for f in dataclasses.fields(ret):
        tp = hints.get(f.name)
        if typing.get_origin(tp) is list:
            item = (typing.get_args(tp) or [None])[0]
            if dataclasses.is_dataclass(item):
                out += [f"{f.name}[].{g.name}" for g in dataclasses.fields(item) if g.name in ("path", "text", "label")]
            out.append(f"{f.name}[]")
        else:
            out.append(f.name)
    if hasattr(ret, "artifacts") and "artifacts[]" not in out:
        out.append("artifacts[]")  # the contract's file paths; the executor adds them to the plain result
    if callable(getattr(ret, "summary", None)) and "summary" not in out:
        out.append("summary")
    data = getattr(tool, "output_hint", None)  # a tool may name more (e.g. fields of a dict payload)
    return out + list(data or [])


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    return schema.get("type", "any")


def tool_line(tool: Any) -> str:
    schema = tool.input_schema
    req = set(schema.get("required", []))
    params = ", ".join(f"{n}{'' if n in req else '?'}: {_type_name(p)}" for n, p in schema.get("properties", {}).items())
    outs = [f for f in output_fields(tool) if f in _SHOWN_OUTPUTS]  # keep the prompt short
    ret = f" -> {', '.join(outs)}" if outs else ""
    return f"- {tool.name}({params}){ret}: {tool.description}"


def _main_arg(tool: Any) -> str | None:
    from orchestrator.router import IMAGE_ARGS, MAIN_TEXT_ARGS

    props = tool.input_schema.get("properties", {})
    main = next((p for p in MAIN_TEXT_ARGS if p in props), None)
    return main or next((p for p in tool.input_schema.get("required", [])
                         if props.get(p, {}).get("type") == "string" and p not in IMAGE_ARGS), None)


def _render_shot(tools: Mapping[str, Any], steps: list[tuple[str, dict[str, str], list[int]]]) -> str | None:
    rendered = []
    for tool_name, roles, deps in steps:
        tool = tools.get(tool_name)
        if tool is None:
            return None
        props = tool.input_schema.get("properties", {})
        args: dict[str, Any] = {}
        for role, value in roles.items():
            name = _main_arg(tool) if role == "main" else role
            if name is None or name not in props:
                return None
            if value.startswith("ref:"):
                _, sid, fld = value.split(":", 2)
                prev = tools[steps[int(sid) - 1][0]]
                if fld not in output_fields(prev):
                    return None
                value = f"${sid}." + fld.replace("[]", "[0]")
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


def plan_messages(tools: Mapping[str, Any], text: str, image: str | None = None,
                  history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    lines = ["You turn a user request into a plan of tool calls. Tools:"]
    lines += [tool_line(t) for t in tools.values()]
    lines.append(_RULES)
    shots = [(req, _render_shot(tools, steps)) for req, steps in _SHOTS]
    lines.append("Examples:")
    for req, plan in shots:
        if plan is not None:
            lines.append(f"Request: {req}\nPlan: {plan}")
    user = ""
    if history:
        recent = history[-2:]
        user += "Earlier in this conversation:\n" + "\n".join(f"{h['role']}: {h['content'][:200]}" for h in recent) + "\n"
    if image:
        user += f"(The user attached an image: {image})\n"
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
            alternatives.append({"type": "object", "properties": {"tool": {"const": name}, **props},
                                 "required": ["tool", *schema.get("required", [])]})
            continue
        args = {"type": "object", "properties": props, "required": list(schema.get("required", []))}
        alternatives.append({
            "type": "object",
            "properties": {"tool": {"const": name}, "args": args,
                           "depends_on": {"type": "array", "items": {"type": "integer"}}},
            "required": ["tool", "args", "depends_on"],
        })
    return {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"anyOf": alternatives}, "minItems": min_steps,
                                 "maxItems": max_steps}},
        "required": ["steps"],
    }


def answer_messages(request: str, summaries: list[str], history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    system = ("You combine tool results into one short answer for the user (at most 5 sentences). "
              "Use only the results. Keep citation markers such as [1] exactly where they support a sentence. "
              "When a result is a device reading, name the device and the time of the reading. "
              "If a step failed, say so in one sentence. Answer in the language of the request.")
    body = f"Request: {request}\nResults:\n" + "\n".join(summaries) + "\nAnswer:"
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def chat_messages(request: str, history: list[dict[str, str]] | None = None, tools: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    names = ", ".join(sorted(tools)) if tools else "none"
    system = ("You are polymodal, a concise assistant. You can answer from a knowledge base, search photos, "
              f"generate images and query edge devices (tools: {names}). Reply briefly in the user's language.")
    return [{"role": "system", "content": system}, *(history or [])[-6:], {"role": "user", "content": request}]
