"""`polymodal generate PROMPT --out FILE`: text-to-image with the configured diffusion pipeline."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from orchestrator.cli._common import add_json_flag, config_from_args, emit, non_negative_float, positive_int
from polymodal.errors import InputError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(sub.add_parser("generate", help="generate images from a text prompt ([diffusion] model)"))
    p.add_argument("prompt", help="what the image should show (any language the model understands)")
    p.add_argument(
        "--out",
        default="",
        help="PNG file to write (with --n > 1: FILE-1.png, FILE-2.png ...); "
        "default: a generated name in [diffusion] output_dir",
    )
    p.add_argument("--negative", default="", help="what the image should not show")
    p.add_argument("--seed", type=int, default=None, help="same seed and arguments give the same image")
    p.add_argument("--steps", type=positive_int, default=None, help="denoising steps (default: [diffusion] steps)")
    p.add_argument("--guidance", type=non_negative_float, default=None, help="guidance scale (0 for turbo/LCM models)")
    p.add_argument("--width", type=positive_int, default=None, help="multiple of 8 (default: [diffusion] width)")
    p.add_argument("--height", type=positive_int, default=None, help="multiple of 8 (default: [diffusion] height)")
    p.add_argument("--n", type=positive_int, default=1, help="number of images")
    p.add_argument("--model", default="", help="override [diffusion] model: a diffusers folder or hub id")
    p.set_defaults(func=cmd_generate)


def _targets(out: Path, n: int) -> list[Path]:
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must name a .png file, got {out}")
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(n)]


def _progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction * 100:5.1f}%] {message:<40}", end="", file=sys.stderr, flush=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from tools.base import ToolContext
    from tools.generate import GenerateImageTool

    config = config_from_args(args)
    if args.model:
        config.diffusion.model = args.model
    targets = _targets(Path(args.out).expanduser(), args.n) if args.out else []
    # Generate beside the target so the final rename is atomic (same filesystem).
    out_dir = targets[0].parent if targets else config.output_dir()
    tool = GenerateImageTool(config.diffusion, out_dir)
    show = sys.stderr.isatty() and not args.json
    context = ToolContext(progress=_progress) if show else ToolContext()
    call = {
        "prompt": args.prompt,
        "negative_prompt": args.negative,
        "seed": args.seed,
        "steps": args.steps,
        "guidance": args.guidance,
        "width": args.width,
        "height": args.height,
        "n": args.n,
    }
    result = tool({k: v for k, v in call.items() if v is not None}, context=context)
    if show:
        print(file=sys.stderr)
    if targets:
        for src, dst in zip(result.paths, targets):
            os.replace(src, dst)
        result.paths = [str(t) for t in targets]
    emit(args, {"ok": True, **_plain(result), "summary": result.summary()}, result.summary())
    return 0


def _plain(result) -> dict:
    from tools.base import to_plain

    return to_plain(result)
