"""Image indexing speed: images/s of `ImageIndex.index_folder` (decode + thumbnail + encode + store) with
the offline ConSE encoder, on photo-sized JPEGs made from the photos that ship offline, against
baselines measured in this run: the same encoder on eager torch, and the encoder alone on
pre-decoded pixels (the ceiling). The photo signals (faces, path words, EXIF: on by default) are
measured on and off, and with OCR on (Tesseract, run only on photos with text-like strokes).

    python -m bench.images_index [--n 120] [--size 2000x1500]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def offline_photos() -> dict[str, np.ndarray]:
    """The ten photos of the quality test (scikit-image + scikit-learn), as RGB arrays."""
    import skimage.data as sd
    from sklearn.datasets import load_sample_images

    arrays = {n: getattr(sd, n)() for n in ("astronaut", "chelsea", "coffee", "rocket", "horse", "camera", "page")}
    arrays["motorcycle"] = sd.stereo_motorcycle()[0]
    sample = load_sample_images()
    for fname, arr in zip(sample.filenames, sample.images):
        arrays[Path(fname).stem] = arr
    out = {}
    for name, arr in arrays.items():
        arr = arr.astype(np.uint8) * 255 if arr.dtype == bool else arr
        out[name] = np.stack([arr] * 3, axis=-1) if arr.ndim == 2 else arr[..., :3]
    return out


def write_library(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """n JPEGs of `size`: random crops of the offline photos, resized like camera output."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = list(offline_photos().values())
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = photos[i % len(photos)]
        h, w = arr.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        img = Image.fromarray(arr[y : y + ch, x : x + cw]).resize(size, Image.BILINEAR)
        p = folder / f"img{i:05d}.jpg"
        img.save(p, quality=88)
        paths.append(p)
    return paths


def _cpu() -> float:
    """CPU seconds of this process and of the programs it ran (Tesseract runs as one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_index(folder: Path, encoder, index_dir: Path, **signals) -> dict:
    from indexes.images import ImageIndex

    encoder.encode([np.zeros((64, 64, 3), np.uint8)])  # load (and export) outside the timing
    t0, c0 = time.perf_counter(), _cpu()
    with ImageIndex.open(index_dir, encoder, **signals) as idx:
        report = idx.index_folder(folder)
    dt, cpu = time.perf_counter() - t0, _cpu() - c0
    # CPU seconds (all threads) per image do not depend on what else runs on the machine: on an
    # otherwise idle 2-core box, wall-clock throughput is at most 2 / (CPU seconds per image).
    return {
        "images": report.added,
        "seconds": round(dt, 2),
        "images_per_s": round(report.added / dt, 1),
        "cpu_ms_per_image": round(1000 * cpu / report.added, 1),
        "idle_2core_bound_images_per_s": round(2 * report.added / cpu, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--size", default="2000x1500", help="JPEG size WxH (a 3-megapixel camera photo)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))

    from indexes.image_encoders.conse import ConSEEncoder
    from indexes.image_encoders.loading import load_image

    out: dict = {"n": args.n, "size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_library(tmp / "photos", args.n, size)
        onnx = ConSEEncoder(runtime="onnx")
        from indexes.faces import FaceCounter

        FaceCounter().detect(load_image(paths[0]).image)  # the face model's first load, outside the timing
        out["polymodal_onnx"] = time_index(tmp / "photos", onnx, tmp / "idx-onnx")
        out["no_signals"] = time_index(tmp / "photos", onnx, tmp / "idx-plain", signals=False, faces=False)
        out["with_ocr"] = time_index(tmp / "photos", onnx, tmp / "idx-ocr", ocr=True)
        out["polymodal_torch"] = time_index(tmp / "photos", ConSEEncoder(runtime="torch"), tmp / "idx-torch")

        t0 = time.perf_counter()
        pixels = [load_image(p).image for p in paths]
        decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in paths[: max(10, args.n // 4)]:
            load_image(p, draft=None)
        full = (time.perf_counter() - t0) / max(10, args.n // 4)
        out["decode_draft_images_per_s"] = round(len(paths) / decode, 1)
        out["decode_full_images_per_s"] = round(1 / full, 1)
        t0 = time.perf_counter()
        onnx.encode(pixels)
        enc = time.perf_counter() - t0
        out["encode_only_onnx_images_per_s"] = round(len(paths) / enc, 1)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"ImageIndex.index_folder, ConSE on ONNX Runtime : {out['polymodal_onnx']['images_per_s']:7.1f} images/s "
            f"({args.n} JPEGs {args.size}; faces, path words, EXIF on, OCR off: the defaults)"
        )
        print(
            f"  CPU time {out['polymodal_onnx']['cpu_ms_per_image']} ms/image (all threads): at most "
            f"{out['polymodal_onnx']['idle_2core_bound_images_per_s']} images/s on 2 idle cores; load now "
            f"{os.getloadavg()[0]:.1f}"
        )
        print(
            f"  photo signals off (embedding only)          : {out['no_signals']['images_per_s']:7.1f} images/s "
            f"(CPU {out['no_signals']['cpu_ms_per_image']} ms/image)"
        )
        print(
            f"  signals + OCR (text-like photos only)       : {out['with_ocr']['images_per_s']:7.1f} images/s "
            f"(CPU {out['with_ocr']['cpu_ms_per_image']} ms/image)"
        )
        print(
            f"baseline: same on eager torch                 : {out['polymodal_torch']['images_per_s']:7.1f} images/s "
            f"(CPU {out['polymodal_torch']['cpu_ms_per_image']} ms/image)"
        )
        print(f"ceiling: ConSE encode alone, pixels in memory : {out['encode_only_onnx_images_per_s']:7.1f} images/s")
        print(
            f"JPEG decode with draft scaling / full decode  : {out['decode_draft_images_per_s']:7.1f} / "
            f"{out['decode_full_images_per_s']:.1f} images/s"
        )
    return out


if __name__ == "__main__":
    main()
