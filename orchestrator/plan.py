"""Typed plans: steps with a tool, validated arguments, dependencies and `$N.field` references.

A reference such as `"$1.images[0].path"` in a step's arguments is replaced at run time by that
part of step 1's result (as plain data, `tools.base.to_plain`). A whole-string reference keeps the
value's type; a reference inside a longer string is substituted as text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from polymodal.errors import InputError, PlanError, PlanRefused, PolymodalError

__all__ = ["Plan", "PlanStep", "find_references", "resolve_references", "validate_plan", "plan_from_json"]

REF = re.compile(r"\$(\d+)((?:\.[A-Za-z_]\w*|\[-?\d+\])*)")
_PATH_PART = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]")


@dataclass
class PlanStep:
    id: int
    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    depends_on: list[int] = field(default_factory=list)


@dataclass
class Plan:
    """Steps in order; an empty plan means "answer directly" (small talk, questions about the chat)."""

    steps: list[PlanStep] = field(default_factory=list)
    source: str = ""  # router | llm | followup | direct
    note: str = ""  # why the planner chose this plan (for the UI and the routing eval)

    def tools(self) -> list[str]:
        return [s.tool for s in self.steps]

    def edges(self) -> set[tuple[int, int]]:
        """Dependency edges (from, to) by step position, so plans compare regardless of ids."""
        pos = {s.id: i + 1 for i, s in enumerate(self.steps)}
        return {(pos[d], pos[s.id]) for s in self.steps for d in s.depends_on if d in pos}

    def step(self, step_id: int) -> PlanStep:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [
                {"id": s.id, "tool": s.tool, "args": s.args, "depends_on": list(s.depends_on)} for s in self.steps
            ],
            "source": self.source,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        return plan_from_json(data, source=str(data.get("source", "")), note=str(data.get("note", "")))


def plan_from_json(data: Any, source: str = "llm", note: str = "") -> Plan:
    """Build a plan from decoded JSON (`{"steps": [...]}` or a bare list); ids default to positions.

    A step is either nested, `{"tool": T, "args": {...}, "depends_on": [...]}`, or flat, `{"tool": T,
    <arguments>}`, where the `$N.field` references in the arguments are its dependencies.
    """
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, Mapping) or not isinstance(data.get("steps", []), list):
        raise PlanError("the plan must be an object with a list of steps")
    steps = []
    for i, raw in enumerate(data.get("steps") or [], start=1):
        if not isinstance(raw, Mapping):
            raise PlanError(f"plan step {i} is not an object")
        tool = raw.get("tool")
        if not isinstance(tool, str) or not tool:
            raise PlanError(f"plan step {i} names no tool")
        if "args" in raw:
            args = raw.get("args")
            args = {} if args is None else args
            if not isinstance(args, Mapping):
                raise PlanError(f"plan step {i} ({tool}): args must be an object")
        else:  # the flat wire form: arguments beside the tool name, references are the dependencies
            args = {k: v for k, v in raw.items() if k not in ("tool", "id", "depends_on")}
        deps = raw.get("depends_on") or ([] if "args" in raw else sorted(find_references(args)))
        if isinstance(deps, (int, str)):
            deps = [deps]
        try:
            deps = [int(d) for d in deps]
            sid = int(raw.get("id", i))
        except (TypeError, ValueError):
            raise PlanError(f"plan step {i} ({tool}): ids must be integers") from None
        steps.append(PlanStep(id=sid, tool=tool, args=dict(args), depends_on=deps))
    return Plan(steps=steps, source=source, note=note)


# -- references ---------------------------------------------------------------------------------


def find_references(value: Any) -> set[int]:
    """Step ids referenced anywhere inside an argument value."""
    if isinstance(value, str):
        return {int(m.group(1)) for m in REF.finditer(value)}
    if isinstance(value, Mapping):
        return set().union(*(find_references(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(find_references(v) for v in value)) if value else set()
    return set()


def _follow(data: Any, path: str, ref: str) -> Any:
    for m in _PATH_PART.finditer(path):
        key, index = m.group(1), m.group(2)
        try:
            if key is not None:
                if isinstance(data, Mapping):
                    data = data[key]
                elif isinstance(data, list) and data and isinstance(data[0], Mapping) and key in data[0]:
                    data = data[0][key]  # "$1.images.path": the first item's field, a common LLM shorthand
                else:
                    raise KeyError(key)
            else:
                data = data[int(index)]
        except (KeyError, IndexError, TypeError):
            raise InputError(f"reference {ref} points at nothing in that step's result") from None
    return data


def resolve_references(value: Any, results: Mapping[int, Any]) -> Any:
    """Replace `$N.path` references by parts of the plain results of earlier steps."""
    if isinstance(value, str):
        whole = REF.fullmatch(value.strip())
        if whole:
            return _lookup(whole, results)
        return REF.sub(lambda m: _as_text(_lookup(m, results)), value)
    if isinstance(value, Mapping):
        return {k: resolve_references(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, results) for v in value]
    return value


def _lookup(m: re.Match, results: Mapping[int, Any]) -> Any:
    sid = int(m.group(1))
    if sid not in results:
        raise InputError(f"reference {m.group(0)} names step {sid}, which produced no result")
    return _follow(results[sid], m.group(2), m.group(0))


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("answer", "text", "summary", "prompt", "path"):
            if isinstance(value.get(key), str):
                return value[key]
    return str(value)


# -- validation and repair ----------------------------------------------------------------------


def validate_plan(plan: Plan, tools: Mapping[str, Any], repair: bool = True) -> tuple[Plan, list[str]]:
    """Check a plan against the tools; fix what can be fixed safely.

    Returns the (possibly repaired) plan and the list of repairs made. Raises `PlanError` naming
    the first problem that cannot be repaired: unknown tool, bad arguments, a reference to a step
    that does not exist or comes later, a dependency cycle.
    """
    from tools.base import validate_args

    fixes: list[str] = []
    seen: set[int] = set()
    for pos, step in enumerate(plan.steps, start=1):
        if step.id in seen:
            if not repair:
                raise PlanError(f"plan step id {step.id} is used twice")
            fixes.append(f"renumbered duplicate step id {step.id}")
            step.id = max(seen) + 1
        seen.add(step.id)
    ids = [s.id for s in plan.steps]
    for step in plan.steps:
        if step.tool not in tools:
            close = difflib.get_close_matches(step.tool.replace("-", "_").lower(), list(tools), n=1, cutoff=0.75)
            if not (repair and close):
                raise PlanError(f"the plan uses an unknown tool '{step.tool}' (known: {', '.join(sorted(tools))})")
            fixes.append(f"tool '{step.tool}' -> '{close[0]}'")
            step.tool = close[0]
        refs = find_references(step.args)
        for ref in sorted(refs):
            if ref not in ids:
                raise PlanError(f"step {step.id} ({step.tool}) refers to ${ref}, but the plan has no step {ref}")
            if ref == step.id:
                raise PlanError(f"step {step.id} ({step.tool}) refers to its own result")
        bad = [d for d in step.depends_on if d not in ids or d == step.id]
        if bad:
            if not repair:
                raise PlanError(f"step {step.id} ({step.tool}) depends on missing step(s) {bad}")
            fixes.append(f"step {step.id}: dropped dependencies on missing steps {bad}")
            step.depends_on = [d for d in step.depends_on if d not in bad]
        missing = sorted(refs - set(step.depends_on))
        if missing:
            fixes.append(f"step {step.id}: added dependencies {missing} implied by references")
            step.depends_on = sorted(set(step.depends_on) | refs)
        step.args = _check_args(step, tools[step.tool], validate_args, fixes if repair else None)
        try:
            tools[step.tool].check_plan_args(step.args)
        except PolymodalError as exc:
            raise PlanRefused(f"step {step.id} ({step.tool}): {exc}") from None
    _check_acyclic(plan)
    return plan, fixes


def _check_args(step: PlanStep, tool: Any, validate_args: Any, fixes: list[str] | None) -> dict[str, Any]:
    schema = tool.input_schema
    props = schema.get("properties", {})
    args = {k: v for k, v in step.args.items() if v is not None}
    unknown = [k for k in args if k not in props]
    if unknown and fixes is not None:
        required_missing = [r for r in schema.get("required", []) if r not in args]
        # a small model often names the main text argument differently (query vs question)
        if len(unknown) == 1 and len(required_missing) == 1 and isinstance(args[unknown[0]], str):
            fixes.append(f"step {step.id}: argument '{unknown[0]}' -> '{required_missing[0]}'")
            args[required_missing[0]] = args.pop(unknown[0])
        else:
            fixes.append(f"step {step.id}: dropped unknown argument(s) {', '.join(unknown)}")
            for k in unknown:
                args.pop(k)
    # References are checked when they resolve; validate the literal arguments now.
    literal = {k: v for k, v in args.items() if not (isinstance(v, str) and find_references(v))}
    placeholders = {k: v for k, v in args.items() if k not in literal}
    probe_schema = dict(schema, required=[r for r in schema.get("required", []) if r not in placeholders])
    try:
        checked = validate_args(probe_schema, literal, step.tool)
    except InputError as exc:
        raise PlanError(f"step {step.id}: {exc}") from None
    return {**checked, **placeholders}


def _check_acyclic(plan: Plan) -> None:
    deps = {s.id: set(s.depends_on) for s in plan.steps}
    done: set[int] = set()
    while len(done) < len(deps):
        ready = [sid for sid, d in deps.items() if sid not in done and d <= done]
        if not ready:
            stuck = sorted(sid for sid in deps if sid not in done)
            raise PlanError(f"the plan's steps {stuck} depend on each other in a cycle")
        done.update(ready)
