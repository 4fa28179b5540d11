"""Image-tower speed, ONNX Runtime against eager torch (same weights, same pixels, this run), and
open_clip text encoding padded to the longest prompt against padding to 77 tokens.

Towers: the ConSE classifier (EfficientNet-Lite0, real weights) and an open_clip ViT-B-32 with
random weights built offline (speed does not depend on the weights; none ship offline).

    python -m bench.images_encoders [--batches 4] [--batch-size 8] [--skip-clip]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def images_per_s(fn, pixels: np.ndarray, batches: int) -> float:
    fn(pixels)  # warm up (and, for ONNX, the first-run graph optimisation)
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        fn(pixels)
        best = min(best, time.perf_counter() - t0)
    return round(len(pixels) / best, 1)


def bench_conse(batches: int, batch_size: int) -> dict:
    from bench.images_index import offline_photos
    from indexes.image_encoders.conse import ConSEEncoder

    photos = list(offline_photos().values())
    enc_t, enc_o = ConSEEncoder(runtime="torch"), ConSEEncoder(runtime="onnx")
    x = enc_t.preprocess([photos[i % len(photos)] for i in range(batch_size)])
    torch_ips = images_per_s(enc_t._run_torch, x, batches)
    onnx_ips = images_per_s(enc_o._run_onnx, x, batches)
    diff = float(np.abs(enc_t._run_torch(x)[1] - enc_o._run_onnx(x)[1]).max())
    return {
        "torch_images_per_s": torch_ips,
        "onnx_images_per_s": onnx_ips,
        "speedup": round(onnx_ips / torch_ips, 2),
        "max_logit_diff": diff,
    }


def bench_clip(batches: int, batch_size: int, folder: Path) -> dict:
    import open_clip
    import torch

    from indexes.image_encoders.clip import OpenClipEncoder, build_tiny_clip

    cfg, ckpt = build_tiny_clip(folder, seed=0, config=open_clip.get_model_config("ViT-B-32"))
    enc_t = OpenClipEncoder(str(cfg), str(ckpt), runtime="torch", cache_dir=folder)
    enc_o = OpenClipEncoder(str(cfg), str(ckpt), runtime="onnx", cache_dir=folder)
    rng = np.random.default_rng(0)
    x = enc_t.pixels([rng.integers(0, 255, (300, 400, 3), dtype=np.uint8) for _ in range(batch_size)])
    torch_ips = images_per_s(enc_t._run_torch, x, batches)
    onnx_ips = images_per_s(enc_o._run_onnx, x, batches)

    prompts = ["a photo of a cat", "一只猫", "a red car parked by the sea at sunset", "a cup of coffee"] * 8
    model, tok = enc_t.model["model"], enc_t.model["tokenizer"]

    def full(p):
        with torch.inference_mode():
            return model.encode_text(tok(p))

    def trimmed(p):
        return enc_t.embed_texts(p)

    def texts_per_s(fn):
        fn(prompts)
        best = float("inf")
        for _ in range(batches):
            t0 = time.perf_counter()
            fn(prompts)
            best = min(best, time.perf_counter() - t0)
        return round(len(prompts) / best, 1)

    pad77, longest = texts_per_s(full), texts_per_s(trimmed)
    return {
        "model": "ViT-B-32 (random weights)",
        "torch_images_per_s": torch_ips,
        "onnx_images_per_s": onnx_ips,
        "speedup": round(onnx_ips / torch_ips, 2),
        "text_pad77_per_s": pad77,
        "text_longest_per_s": longest,
        "text_speedup": round(longest / pad77, 2),
        "text_tokens": int(enc_t.tokens(prompts).shape[1]),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-clip", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out: dict = {"conse_efficientnet_lite0": bench_conse(args.batches, args.batch_size)}
    if not args.skip_clip:
        with tempfile.TemporaryDirectory() as tmp:
            out["open_clip_vit_b_32"] = bench_clip(args.batches, args.batch_size, Path(tmp))
    if args.json:
        print(json.dumps(out, indent=2))
        return out
    c = out["conse_efficientnet_lite0"]
    print(
        f"EfficientNet-Lite0 (ConSE) batch {args.batch_size}: torch {c['torch_images_per_s']} img/s, "
        f"ONNX Runtime {c['onnx_images_per_s']} img/s ({c['speedup']}x; max logit diff {c['max_logit_diff']:.1e})"
    )
    if "open_clip_vit_b_32" in out:
        v = out["open_clip_vit_b_32"]
        print(
            f"open_clip ViT-B-32 image tower batch {args.batch_size}: torch {v['torch_images_per_s']} img/s, "
            f"ONNX Runtime {v['onnx_images_per_s']} img/s ({v['speedup']}x)"
        )
        print(
            f"open_clip ViT-B-32 text, 32 prompts: padded to 77 {v['text_pad77_per_s']}/s, padded to the longest "
            f"({v['text_tokens']} tokens) {v['text_longest_per_s']}/s ({v['text_speedup']}x)"
        )
    return out


if __name__ == "__main__":
    main()
