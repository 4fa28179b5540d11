"""What a device can do. A capability validates its params, computes on the device and returns
(data, inference_ms); a bad request raises `RequestError`, which becomes an error reply.

    classify       image -> top-k labels            (camera frame, or an inline base64 image)
    detect_faces   image -> boxes + scores          (BlazeFace)
    sensor_status  last readings -> normal/spike/drift/stuck (+ dropout by rule) with confidence
    snapshot       latest frame, downscaled, base64 JPEG
    readings       raw recent values of one sensor
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from edge.camera import CameraSource
from edge.errors import RequestError
from edge.faces import FaceDetector
from edge.runtime import TFLiteModel
from edge.sensors import CLASSES, WINDOW, SimulatedSensor, window_features

__all__ = ["Capability", "Classify", "DetectFaces", "SensorStatus", "Snapshot", "Readings"]

MAX_IMAGE_SIDE = 4096
MAX_TOP_K = 10


class Capability:
    name: str = ""
    model: str = ""
    params: dict[str, str] = {}  # param -> one-line description (announced)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "params": dict(self.params)}

    def models(self) -> list[TFLiteModel]:
        return []

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, Any], float]:  # pragma: no cover
        raise NotImplementedError


# -- param helpers ----------------------------------------------------------------------------


def _int_param(params: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = params.get(key, default)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
        raise RequestError("bad_param", f"'{key}' must be an integer")
    v = int(v)
    if not lo <= v <= hi:
        raise RequestError("bad_param", f"'{key}' must be between {lo} and {hi}, got {v}")
    return v


def _check_known(params: dict[str, Any], allowed: dict[str, str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise RequestError(
            "bad_param", f"unknown param(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}"
        )


def _image_from_params(params: dict[str, Any], camera: CameraSource | None) -> tuple[str, np.ndarray]:
    """An inline base64 image if given (bounded), else the camera's current frame."""
    b64 = params.get("image")
    if b64 is None:
        if camera is None:
            raise RequestError("bad_param", "this device has no camera: pass 'image' (base64)")
        return camera.current()
    if not isinstance(b64, str):
        raise RequestError("bad_param", "'image' must be a base64 string")
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(b64, validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            if max(im.size) > MAX_IMAGE_SIDE:
                raise RequestError(
                    "too_large", f"image is {im.size[0]}x{im.size[1]}; the limit is {MAX_IMAGE_SIDE} px a side"
                )
            arr = np.asarray(im.convert("RGB"))
    except RequestError:
        raise
    except (ValueError, UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise RequestError("bad_image", "'image' is not a readable base64 image") from None
    return "inline", arr


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))


def center_crop(arr: np.ndarray, size: int, pad: int = 32) -> np.ndarray:
    """EfficientNet eval preprocessing: resize the short side to size+pad, crop the centre."""
    h, w = arr.shape[:2]
    s = (size + pad) / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    arr = _resize(arr, (nw, nh))
    top, left = (nh - size) // 2, (nw - size) // 2
    return arr[top : top + size, left : left + size]


# -- capabilities -----------------------------------------------------------------------------


class Classify(Capability):
    name = "classify"
    params = {"top_k": "how many labels (1-10, default 3)", "image": "optional base64 image; default: the camera frame"}

    def __init__(self, model: TFLiteModel, camera: CameraSource | None) -> None:
        self.model_ = model
        self.model = model.name
        self.camera = camera

    def models(self) -> list[TFLiteModel]:
        return [self.model_]

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, Any], float]:
        _check_known(params, self.params)
        k = _int_param(params, "top_k", 3, 1, MAX_TOP_K)
        source, img = _image_from_params(params, self.camera)
        _, h, w, _ = self.model_.input_shape
        x = center_crop(img, h).astype(np.float32)[None]
        (logits,), ms = self.model_.predict(x)
        logits = logits.reshape(-1)
        probs = _softmax(logits) if logits.min() < 0 or abs(logits.sum() - 1) > 0.05 else logits
        top = np.argsort(-probs)[:k]
        labels = self.model_.labels
        return {
            "source": source,
            "labels": [
                {"label": labels[i] if i < len(labels) else str(i), "index": int(i), "score": round(float(probs[i]), 4)}
                for i in top
            ],
        }, ms


class DetectFaces(Capability):
    name = "detect_faces"
    params = {
        "min_score": "score threshold 0-1 (default 0.5)",
        "image": "optional base64 image; default: the camera frame",
    }

    def __init__(self, detector: FaceDetector, camera: CameraSource | None) -> None:
        self.detector = detector
        self.model = detector.model.name
        self.camera = camera

    def models(self) -> list[TFLiteModel]:
        return [self.detector.model]

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, Any], float]:
        _check_known(params, self.params)
        min_score = params.get("min_score", 0.5)
        if isinstance(min_score, str):
            try:
                min_score = float(min_score)
            except ValueError:
                raise RequestError("bad_param", "'min_score' must be a number") from None
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0.0 <= min_score <= 1.0:
            raise RequestError("bad_param", "'min_score' must be a number between 0 and 1")
        source, img = _image_from_params(params, self.camera)
        faces, ms = self.detector.detect(img, min_score=float(min_score))
        h, w = img.shape[:2]
        return {"source": source, "width": int(w), "height": int(h), "count": len(faces), "faces": faces}, ms


class SensorStatus(Capability):
    name = "sensor_status"
    params = {
        "sensor": "sensor name (default: the first)",
        "window": f"readings to judge ({WINDOW}-256, default {WINDOW})",
    }

    def __init__(self, model: TFLiteModel, sensors: dict[str, SimulatedSensor], dropout_limit: float = 0.2) -> None:
        self.model_ = model
        self.model = model.name
        self.sensors = sensors
        self.dropout_limit = dropout_limit

    def models(self) -> list[TFLiteModel]:
        return [self.model_]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sensors": list(self.sensors), "classes": list(CLASSES) + ["dropout"]}

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, Any], float]:
        _check_known(params, self.params)
        sensor = _pick_sensor(params, self.sensors)
        n = _int_param(params, "window", WINDOW, WINDOW, 256)
        _, values = sensor.recent(n)
        missing = sum(v is None for v in values) / len(values)
        base = {
            "sensor": sensor.spec.name,
            "unit": sensor.spec.unit,
            "window": len(values),
            "missing_fraction": round(missing, 3),
        }
        if missing > self.dropout_limit:
            return {
                **base,
                "status": "dropout",
                "confidence": round(min(1.0, missing / 0.5), 3),
                "last": next((v for v in reversed(values) if v is not None), None),
            }, 0.0
        series = _fill_gaps(values)
        # judge the most recent WINDOW readings (the model's input size)
        (probs,), ms = self.model_.predict(window_features(series[-WINDOW:], sensor.spec.noise)[None])
        probs = probs.reshape(-1)
        if probs.min() < 0 or abs(probs.sum() - 1) > 0.05:
            probs = _softmax(probs)
        best = int(np.argmax(probs))
        return {
            **base,
            "status": CLASSES[best],
            "confidence": round(float(probs[best]), 3),
            "probabilities": {c: round(float(p), 3) for c, p in zip(CLASSES, probs)},
            "last": float(series[-1]),
        }, ms


class Snapshot(Capability):
    name = "snapshot"
    params = {"max_side": "longest side in pixels (32-640, default 160)"}

    def __init__(self, camera: CameraSource) -> None:
        self.camera = camera

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, Any], float]:
        _check_known(params, self.params)
        side = _int_param(params, "max_side", 160, 32, 640)
        from PIL import Image

        name, img = self.camera.current()
        im = Image.fromarray(img)
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
        return {
            "source": name,
            "width": im.size[0],
            "height": im.size[1],
            "format": "jpeg",
            "image_b64": base64.b64encode(buf.getvalue()).decode("ascii"),
        }, 0.0


class Readings(Capability):
    name = "readings"
    params = {"sensor": "sensor name (default: the first)", "n": "how many recent readings (1-500, default 20)"}

    def __init__(self, sensors: dict[str, SimulatedSensor]) -> None:
        self.sensors = sensors

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sensors": list(self.sensors)}

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, Any], float]:
        _check_known(params, self.params)
        sensor = _pick_sensor(params, self.sensors)
        n = _int_param(params, "n", 20, 1, 500)
        times, values = sensor.recent(n)
        return {
            "sensor": sensor.spec.name,
            "unit": sensor.spec.unit,
            "timestamps": [round(t, 3) for t in times],
            "values": values,
        }, 0.0


def _pick_sensor(params: dict[str, Any], sensors: dict[str, SimulatedSensor]) -> SimulatedSensor:
    name = params.get("sensor")
    if name is None:
        return next(iter(sensors.values()))
    if not isinstance(name, str) or name not in sensors:
        raise RequestError("bad_param", f"no sensor {name!r}; this device has {', '.join(sensors)}")
    return sensors[name]


def _fill_gaps(values: list[float | None]) -> np.ndarray:
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    ok = ~np.isnan(v)
    if not ok.all():
        idx = np.arange(v.size)
        v = np.interp(idx, idx[ok], v[ok])
    return v


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
