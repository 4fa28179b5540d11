"""Tool arguments as JSON: a schema derived from a function's type hints (one source of truth),
validation of the planner's arguments against it (one-line `InputError`s), and `to_plain` for
results. Used by `tools.base`; nothing here knows about any tool."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import Any, Callable, Literal, get_args, get_origin

from polymodal.errors import InputError

__all__ = ["schema_from_signature", "validate_args", "to_plain", "accepts_context"]


# -- schema derivation ------------------------------------------------------------------------

_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def accepts_context(fn: Callable[..., Any]) -> bool:
    return "context" in inspect.signature(fn).parameters


def _arg_docs(fn: Callable[..., Any]) -> dict[str, str]:
    doc = inspect.getdoc(fn) or ""
    m = re.search(r"^Args:\s*$(.*?)(?:^\S|\Z)", doc, flags=re.M | re.S)
    if not m:
        return {}
    out: dict[str, str] = {}
    for line in m.group(1).splitlines():
        mm = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)", line)
        if mm:
            out[mm.group(1)] = mm.group(2).strip()
    return out


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if tp in _JSON_TYPES:
        return {"type": _JSON_TYPES[tp]}
    if origin is Literal:
        vals = list(get_args(tp))
        return {"enum": vals}
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        if len(inner) == 1:
            return _type_schema(inner[0])
        return {"anyOf": [_type_schema(a) for a in inner]}
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        args = get_args(tp)
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object"}
    raise TypeError(f"tool argument type {tp!r} has no JSON schema; use str/int/float/bool/list/dict/Literal")


def schema_from_signature(fn: Callable[..., Any]) -> dict[str, Any]:
    """JSON schema of `fn`'s parameters (except `self` and `context`), from its type hints."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    docs = _arg_docs(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in sig.parameters.items():
        if pname in ("self", "context") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if pname not in hints:
            raise TypeError(f"tool parameter '{pname}' of {fn.__qualname__} needs a type hint")
        prop = _type_schema(hints[pname])
        if pname in docs:
            prop["description"] = docs[pname]
        if param.default is param.empty:
            required.append(pname)
        elif param.default is not None:
            prop["default"] = to_plain(param.default)
        props[pname] = prop
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


# -- validation -------------------------------------------------------------------------------


def _check(value: Any, schema: dict[str, Any], path: str) -> Any:
    if "anyOf" in schema:
        for alt in schema["anyOf"]:
            try:
                return _check(value, alt, path)
            except InputError:
                continue
        raise InputError(f"argument '{path}' has the wrong type")
    if "enum" in schema:
        if value not in schema["enum"]:
            raise InputError(f"argument '{path}' must be one of {schema['enum']}, got {value!r}")
        return value
    t = schema.get("type")
    if value is None:
        return None
    if t == "string":
        if not isinstance(value, str):
            raise InputError(f"argument '{path}' must be a string")
    elif t == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
            raise InputError(f"argument '{path}' must be an integer")
    elif t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise InputError(f"argument '{path}' must be a number") from None
        return float(value)
    elif t == "boolean":
        if not isinstance(value, bool):
            raise InputError(f"argument '{path}' must be true or false")
    elif t == "array":
        if not isinstance(value, (list, tuple)):
            raise InputError(f"argument '{path}' must be a list")
        return [_check(v, schema.get("items", {}), f"{path}[{i}]") for i, v in enumerate(value)]
    elif t == "object":
        if not isinstance(value, dict):
            raise InputError(f"argument '{path}' must be an object")
    return value


def validate_args(schema: dict[str, Any], args: dict[str, Any], tool: str = "tool") -> dict[str, Any]:
    """Check `args` against a schema from `schema_from_signature`; one-line `InputError` if wrong."""
    if not isinstance(args, dict):
        raise InputError(f"{tool}: arguments must be an object")
    props = schema.get("properties", {})
    unknown = sorted(set(args) - set(props))
    if unknown and schema.get("additionalProperties", True) is not True:
        raise InputError(f"{tool}: unknown argument(s) {', '.join(unknown)}")
    missing = [r for r in schema.get("required", []) if args.get(r) is None]
    if missing:
        raise InputError(f"{tool}: missing required argument(s) {', '.join(missing)}")
    return {k: _check(v, props.get(k, {}), k) for k, v in args.items()}


def to_plain(obj: Any) -> Any:
    """Dataclasses, paths, numpy scalars/arrays -> JSON-ready plain data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):  # numpy
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return str(obj)
