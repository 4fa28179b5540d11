"""A .tflite model on LiteRT: loads on first use (once, thread-safe), quantizes inputs and
dequantizes outputs so callers always see float arrays, and describes itself for announcements."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TFLiteModel", "file_sha256"]


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class TFLiteModel:
    """One interpreter per model; `predict` is serialised by a lock (interpreters are not re-entrant)."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "",
        labels: list[str] | None = None,
        num_threads: int = 1,
        version: str = "",
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.labels = list(labels or [])
        self.num_threads = max(1, int(num_threads))
        self.version = version
        self._interp: Any = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    def load(self) -> "TFLiteModel":
        if self._interp is None:
            with self._lock:
                if self._interp is None:
                    from ai_edge_litert.interpreter import Interpreter

                    interp = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
                    interp.allocate_tensors()
                    self._interp = interp
        return self

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return self.load()._interp.get_input_details()

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return self.load()._interp.get_output_details()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.inputs[0]["shape"])

    @property
    def quantized(self) -> bool:
        return self.inputs[0]["dtype"] in (np.int8, np.uint8)

    # -- inference ------------------------------------------------------------------------
    def predict(self, *arrays: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Run once on float (or already-integer) inputs; returns (float outputs, invoke ms)."""
        self.load()
        with self._lock:
            interp = self._interp
            for detail, arr in zip(interp.get_input_details(), arrays):
                interp.set_tensor(detail["index"], _to_input(arr, detail))
            t0 = time.perf_counter()
            interp.invoke()
            ms = (time.perf_counter() - t0) * 1000.0
            outs = [_from_output(interp.get_tensor(d["index"]), d) for d in interp.get_output_details()]
        return outs, ms

    # -- description ----------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """What the device announces: file, checksum, tensor specs, label count."""

        def tensor(d: dict[str, Any]) -> dict[str, Any]:
            scale, zero = d.get("quantization", (0.0, 0))
            return {
                "name": d["name"],
                "shape": [int(x) for x in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name,
                "scale": float(scale),
                "zero_point": int(zero),
            }

        return {
            "name": self.name,
            "file": self.path.name,
            "sha256": file_sha256(self.path)[:16],
            "version": self.version,
            "bytes": self.path.stat().st_size,
            "threads": self.num_threads,
            "inputs": [tensor(d) for d in self.inputs],
            "outputs": [tensor(d) for d in self.outputs],
            # small label sets travel in the announcement; large ones (ImageNet) by count and checksum
            "labels": list(self.labels) if len(self.labels) <= 64 else len(self.labels),
            "labels_sha256": hashlib.sha256("\n".join(self.labels).encode()).hexdigest()[:16],
        }


def _to_input(arr: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    arr = np.asarray(arr)
    if tuple(arr.shape) != tuple(detail["shape"]):
        arr = arr.reshape(detail["shape"])
    if dtype in (np.int8, np.uint8) and arr.dtype != dtype:
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        arr = np.clip(np.round(arr.astype(np.float32) / scale + zero), info.min, info.max)
    return arr.astype(dtype, copy=False)


def _from_output(arr: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        if scale:
            return (arr.astype(np.float32) - zero) * scale
    return arr.astype(np.float32, copy=False)
