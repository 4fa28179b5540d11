"""ONNX Runtime for image towers: export a torch module once (cached by a key over its inputs), run it.

On 2 CPU cores ONNX Runtime runs these convolution/transformer towers several times faster than
eager torch (bench/images_encoders.py measures it); outputs match torch to ~1e-5, so both runtimes
share one vector space and one encoder name.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from polymodal.errors import require

__all__ = ["cache_dir", "cached_export", "session", "onnxruntime_available"]


def cache_dir() -> Path:
    from polymodal.config import PathsConfig

    return PathsConfig().cache() / "image_encoders"


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def file_key(*paths: str | os.PathLike) -> list[Any]:
    """Size and mtime of each existing file: enough to notice a replaced checkpoint."""
    out: list[Any] = []
    for p in paths:
        if p and os.path.isfile(p):
            st = os.stat(p)
            out += [str(p), st.st_size, st.st_mtime_ns]
    return out


def cached_export(
    stem: str,
    key_parts: Sequence[Any],
    build: Callable[[], Any],
    dummy: Any,
    outputs: Sequence[str],
    folder: Path | None = None,
) -> Path:
    """Export `build()` (a torch module taking `pixels`) to `<folder>/<stem>-<key>.onnx` unless it is
    there already; the write is atomic, so a killed export leaves no half file."""
    import torch

    key = hashlib.sha256(json.dumps([stem, torch.__version__, *key_parts], default=str).encode()).hexdigest()[:16]
    target = (folder or cache_dir()) / f"{stem}-{key}.onnx"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    dynamic = {"pixels": {0: "batch"}, **{name: {0: "batch"} for name in outputs}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation/constant-folding notes
            # dynamo=False: the TorchScript exporter needs no onnxscript and handles these towers
            torch.onnx.export(
                build(),
                (dummy,),
                str(tmp),
                input_names=["pixels"],
                output_names=list(outputs),
                opset_version=17,
                dynamo=False,
                dynamic_axes=dynamic,
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def session(path: Path, threads: int = 0):
    ort = require("onnxruntime", "clip", "the ONNX image encoders")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
