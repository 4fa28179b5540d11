"""generate_image: text-to-image with any diffusers pipeline folder or hub id, CPU-sensible.

    tool = GenerateImageTool.from_config(config)
    result = tool({"prompt": "a red fox in snow", "seed": 7}, context=ToolContext(progress=show))
    result.paths, result.summary()

The pipeline class comes from the folder's `model_index.json`: diffusers' own classes (Stable
Diffusion 1.x/2.x, SD-Turbo, SDXL(-Turbo), LCM ...) load through `DiffusionPipeline`, project
classes through `PIPELINE_KINDS`. The pipeline loads on first use, under a lock, and stays resident
only while its weights fit `[diffusion] memory_budget_mb`. Every PNG is written atomically under the
output folder with a generated name and carries its parameters as PNG text (`read_parameters`).
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import io
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from polymodal.config import Config, DiffusionConfig
from polymodal.errors import InputError, ModelUnavailable, require
from polymodal.fsutil import atomic_write_bytes
from polymodal.lazy import resolve
from tools.base import Cues, PlanExample, Tool, ToolContext, ToolResult

__all__ = [
    "GenerateImageTool",
    "GenerateImageResult",
    "PIPELINE_KINDS",
    "register_pipeline_kind",
    "read_parameters",
    "NO_WEIGHTS_MESSAGE",
    "MAX_SIDE",
    "MAX_IMAGES",
    "MAX_STEPS",
]

NO_WEIGHTS_MESSAGE = (
    'no diffusion weights configured: set [diffusion] model = "/path/to/pipeline" '
    "(a diffusers folder) or a hub id in config.toml"
)
MAX_SIDE = 2048
MAX_IMAGES = 8
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
PNG_KEY = "parameters"  # the PNG text chunk holding the generation parameters as JSON

# model_index.json `_class_name` -> "module:attr", attr being a pipeline class or a function
# returning one. Classes diffusers knows need no entry.
PIPELINE_KINDS: dict[str, str] = {
    "DigitsTextPipeline": "tools.digits_diffusion:pipeline_class",
}


def register_pipeline_kind(class_name: str, target: str) -> None:
    """Load folders whose `_class_name` is `class_name` with the class named by "module:attr"."""
    PIPELINE_KINDS[class_name] = target


@dataclass
class GenerateImageResult(ToolResult):
    """What was generated, from what, with which settings. `paths[i]` was drawn with `seeds[i]`."""

    prompt: str
    negative_prompt: str
    model: str
    pipeline: str
    steps: int
    guidance: float
    width: int
    height: int
    seeds: list[int]
    paths: list[str]
    seconds: float
    created: str
    resident: bool = True  # False: unloaded after the call (weights exceed the memory budget)

    @property
    def artifacts(self) -> list[str]:
        return list(self.paths)

    def summary(self) -> str:
        n = len(self.paths)
        files = ", ".join(self.paths)
        return (
            f'Generated {n} image{"s" if n != 1 else ""} of "{self.prompt}" with {self.model} '
            f"({self.width}x{self.height}, {self.steps} steps, guidance {self.guidance:g}, "
            f"seed {self.seeds[0] if self.seeds else '-'}) in {self.seconds:.1f}s: {files}"
        )


def read_parameters(path: str | Path) -> dict[str, Any]:
    """The generation parameters stored in a PNG written by generate_image ({} if none)."""
    from PIL import Image

    with Image.open(path) as im:
        text = getattr(im, "text", {}).get(PNG_KEY)
    return json.loads(text) if text else {}


class GenerateImageTool(Tool):
    name = "generate_image"
    description = (
        "Create new images from a text description with a diffusion model; saves PNG files. "
        "Use for drawing or generating pictures, not for finding existing photos."
    )
    examples = (
        "draw an owl perched on a snowy branch",
        "generate an image of a lighthouse at sunset",
        "make a picture of a cat wearing a hat",
        "画一只在雪地里的狐狸",
        "Paint a harbour at dusk with fishing boats.",
        "Generate an image of a floating market at dawn.",
        "Create a poster for a jazz night in a small bar.",
        "Paint a watercolor landscape.",
        "Make a picture of a dragon.",
        "画一只在树枝上打盹的猫头鹰",
        "生成一张雨后竹林的图片",
        "帮我画一幅海边灯塔的油画",
        "设计一个读书会的海报",
        "画一个机器人",
    )
    cues = Cues(
        patterns=(
            re.compile(
                r"\b(generate|draw|paint|sketch|render|illustrate|design|create|make|produce)\b[^.?!;]{0,40}?"
                r"\b(?P<object>image|picture|pic|illustration|drawing|painting|artwork|art|poster|logo|wallpaper|"
                r"icon|portrait|scene|banner|avatar|cartoon)s?\b",
                re.I,
            ),
            re.compile(r"\b(text-to-image|diffusion model to (make|create|draw))\b", re.I),
            re.compile(
                r"(生成|画|绘制|绘|创作|制作|设计|做|来)[^，。？！；]{0,12}?"
                r"(?P<object>图|画|插画|海报|图片|图像|壁纸|头像|封面|logo|插图)"
            ),
            re.compile(r"(画|绘制|描绘)(一|个|只|张|幅|出|些|两|三|条|座|朵|辆|片)"),
            re.compile(r"(帮我|给我|请|再)画"),
            # restyling a picture ("turn this photo into a watercolour", "把这张照片改成油画风格") makes a new one
            re.compile(
                r"\b(turn|transform|convert|change|restyle|repaint|redraw)\s+(this|it|that|the|my)\b[^.?!;]{0,30}?"
                r"\b(into|to look like)\b",
                re.I,
            ),
            re.compile(
                r"(把|将)?(这张|这幅|那张|它|照片|图片|这个图)[^，。？！；]{0,10}?(改成|变成|转成|做成|处理成|画成)"
            ),
        ),
        # "draw a fox" and "draw a comparison" start alike: a bare drawing verb hints, the LLM decides
        weak=(re.compile(r"\b(draw|paint|sketch|illustrate|imagine|render)\b", re.I),),
        strip=(
            re.compile(
                r"^\s*(please\s+)?(can you\s+|could you\s+)?(generate|draw|paint|sketch|render|illustrate|create|"
                r"make|produce|design)\s+(me\s+)?(((a|an|some)\s+)?(image|picture|pic|photo)s?\s+"
                r"(of|showing|with)\s+)?",
                re.I,
            ),
            re.compile(r"^\s*(请)?(帮我|给我)?(生成|画|绘制|创作|制作|设计)(一下)?"),
        ),
        imperative_only=True,
        repeatable=True,
    )
    plan_examples = (
        # English last: a small model copies the language of the nearest example into the arguments
        PlanExample(
            "Explain what the docs say about tidal energy and draw a picture that illustrates the answer",
            (("rag_answer", {"main": "tidal energy"}), ("generate_image", {"main": "ref:1:answer"})),
        ),
    )
    max_concurrency = 1

    def refine_args(self, args: dict[str, Any], change: str) -> dict[str, Any] | None:
        """ "make it bluer": the same prompt and seed with the change appended."""
        prompt = f"{args.get('prompt', '')}, {change.strip()}".strip(", ")
        return {**args, "prompt": prompt}

    def __init__(self, config: DiffusionConfig | None = None, output_dir: str | Path | None = None) -> None:
        super().__init__()
        self.config = config or DiffusionConfig()
        self.output_dir = Path(output_dir) if output_dir else Config(diffusion=self.config).output_dir()
        self._pipe: Any = None
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, config: Config, models: Any = None) -> "GenerateImageTool":
        return cls(config.diffusion, config.output_dir())

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    def unload(self) -> None:
        """Drop the pipeline and free its memory; the next call loads it again."""
        with self._lock:
            self._pipe = None
        gc.collect()

    def pipeline(self) -> Any:
        """The loaded diffusers pipeline (loads it on first use)."""
        with self._lock:
            if self._pipe is None:
                self._pipe = _load_pipeline(self.config)
            return self._pipe

    # -- the tool ----------------------------------------------------------------------------
    def run(
        self,
        prompt: str,
        negative_prompt: str = "",
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        n: int = 1,
        *,
        context: ToolContext | None = None,
    ) -> GenerateImageResult:
        """Generate `n` images of `prompt`.

        Args:
            prompt: what the image should show
            negative_prompt: what it should not show (ignored by models without guidance)
            seed: random seed; the same seed and arguments give the same image (random if omitted)
            steps: denoising steps (default from config: few-step models need 1-4)
            guidance: classifier-free guidance scale (0 for turbo/LCM models)
            width: image width in pixels, a multiple of 8
            height: image height in pixels, a multiple of 8
            n: number of images
        """
        context = context or ToolContext()
        _validate(prompt, seed, steps, guidance, width, height, n)
        if not self.config.model.strip():
            raise ModelUnavailable(NO_WEIGHTS_MESSAGE)
        context.check_cancelled()
        with self._lock:
            if self._pipe is None:
                context.progress(0.0, f"loading {self.config.model}")
            pipe = self.pipeline()
            params = self._resolve(pipe, steps, guidance, width, height)
            _validate(prompt, seed, params["steps"], params["guidance"], params["width"], params["height"], n)
            base = secrets.randbelow(2**31) if seed is None else seed
            seeds = [base + i for i in range(n)]
            started = time.time()
            images = _call_pipeline(pipe, prompt, negative_prompt, seeds, params, context)
            seconds = time.time() - started
            resident = _weights_mb(pipe) <= self.config.memory_budget_mb
            if not resident:
                self._pipe = None
        if not resident:
            gc.collect()
        context.check_cancelled()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        result = GenerateImageResult(
            prompt=prompt,
            negative_prompt=negative_prompt,
            model=self.config.model,
            pipeline=type(pipe).__name__,
            steps=params["steps"],
            guidance=params["guidance"],
            width=images[0].width,
            height=images[0].height,
            seeds=seeds,
            paths=[],
            seconds=round(seconds, 3),
            created=created,
            resident=resident,
        )
        result.paths = [str(self._save(im, result, s)) for im, s in zip(images, seeds)]
        context.progress(1.0, f"saved {len(images)} image(s)")
        return result

    def _resolve(
        self, pipe: Any, steps: int | None, guidance: float | None, width: int | None, height: int | None
    ) -> dict[str, Any]:
        """Explicit argument > a value set in config > the model's own recommendation > config default."""
        defaults = DiffusionConfig()
        recommended = _model_defaults(pipe)
        out = {}
        for key, given in (("steps", steps), ("guidance", guidance), ("width", width), ("height", height)):
            configured = getattr(self.config, key)
            if given is not None:
                out[key] = given
            elif configured != getattr(defaults, key) or key not in recommended:
                out[key] = configured
            else:
                out[key] = recommended[key]
        out["guidance"] = float(out["guidance"])
        return out

    def _save(self, image: Any, result: GenerateImageResult, seed: int) -> Path:
        from PIL.PngImagePlugin import PngInfo

        meta = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("paths", "seeds", "seconds")}
        meta["seed"] = seed
        info = PngInfo()
        info.add_itxt(PNG_KEY, json.dumps(meta, ensure_ascii=False, sort_keys=True))
        info.add_text("Software", "polymodal generate_image")
        buf = io.BytesIO()
        image.save(buf, format="PNG", pnginfo=info)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = self.output_dir / f"gen-{stamp}-{uuid.uuid4().hex[:10]}.png"  # never from the prompt
        return atomic_write_bytes(path, buf.getvalue())


# -- validation ---------------------------------------------------------------------------------


def _validate(
    prompt: str,
    seed: int | None,
    steps: int | None,
    guidance: float | None,
    width: int | None,
    height: int | None,
    n: int,
) -> None:
    if not prompt or not prompt.strip():
        raise InputError("generate_image: the prompt is empty")
    if seed is not None and not 0 <= seed < 2**63 - MAX_IMAGES:
        raise InputError("generate_image: seed must be a non-negative integer below 2^63")
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise InputError(f"generate_image: steps must be between 1 and {MAX_STEPS}, got {steps}")
    if guidance is not None and not 0.0 <= guidance <= MAX_GUIDANCE:
        raise InputError(f"generate_image: guidance must be between 0 and {MAX_GUIDANCE:g}, got {guidance:g}")
    for side, value in (("width", width), ("height", height)):
        if value is None:
            continue
        if value % 8 or not 8 <= value <= MAX_SIDE:
            raise InputError(f"generate_image: {side} must be a multiple of 8 between 8 and {MAX_SIDE}, got {value}")
    if not 1 <= n <= MAX_IMAGES:
        raise InputError(f"generate_image: n must be between 1 and {MAX_IMAGES}, got {n}")


# -- loading ------------------------------------------------------------------------------------


def _pipeline_class_for(folder: Path) -> Any:
    """The project class registered for the folder's `_class_name`, or None for diffusers' own."""
    try:
        class_name = json.loads((folder / "model_index.json").read_text("utf-8")).get("_class_name", "")
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot read {folder / 'model_index.json'}: {exc}") from exc
    target = PIPELINE_KINDS.get(class_name)
    if target is None:
        return None
    obj = resolve(target, "diffusion pipeline")
    return obj if isinstance(obj, type) else obj()


def _is_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "~")) and os.sep not in ref.replace("/", "")


def _load_pipeline(config: DiffusionConfig) -> Any:
    require("diffusers", "diffusion", "image generation")
    import torch
    from diffusers import DiffusionPipeline

    ref = config.model.strip()
    local = Path(ref).expanduser()
    if local.is_dir():
        if not (local / "model_index.json").exists():
            raise ModelUnavailable(
                f"{local} is not a diffusers pipeline folder (no model_index.json): "
                "set [diffusion] model to a folder saved with save_pretrained"
            )
        cls = _pipeline_class_for(local) or DiffusionPipeline
        source = str(local)
    elif local.exists():
        raise ModelUnavailable(f"[diffusion] model must be a diffusers pipeline folder, not a file: {local}")
    elif _is_hub_id(ref):
        cls, source = DiffusionPipeline, ref
    else:
        raise ModelUnavailable(f"diffusion model folder not found: {local} (set [diffusion] model in config.toml)")
    extra = {"vae": _load_tiny_vae(config.tiny_vae.strip())} if config.tiny_vae.strip() else {}
    try:
        # the VAE is passed at construction so the pipeline derives its scale factor from it
        pipe = cls.from_pretrained(source, torch_dtype=torch.float32, **extra)
    except (OSError, ValueError, EnvironmentError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"cannot load diffusion model '{ref}': {reason}") from exc
    pipe.to("cpu")
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_tiny_vae(ref: str) -> Any:
    import torch
    from diffusers import AutoencoderTiny

    try:
        return AutoencoderTiny.from_pretrained(
            str(Path(ref).expanduser()) if Path(ref).expanduser().exists() else ref, torch_dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot load [diffusion] tiny_vae '{ref}': {str(exc).splitlines()[0]}") from exc


def _model_defaults(pipe: Any) -> dict[str, Any]:
    """What a pipeline recommends for itself (project pipelines record it in model_index.json)."""
    cfg = getattr(pipe, "config", {}) or {}
    out: dict[str, Any] = {}
    if "default_inference_steps" in cfg:
        out["steps"] = int(cfg["default_inference_steps"])
    if "default_guidance" in cfg:
        out["guidance"] = float(cfg["default_guidance"])
    unet = getattr(pipe, "unet", None)
    if unet is not None and not hasattr(pipe, "vae"):  # pixel-space model: its native size
        out["width"] = out["height"] = int(unet.config.sample_size)
    return out


def _weights_mb(pipe: Any) -> float:
    import torch

    total = 0
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in component.parameters())
    return total / 2**20


# -- generation ---------------------------------------------------------------------------------

TILED_DECODE_PIXELS = 1024 * 1024


def _fit_memory(pipe: Any, width: int, height: int) -> None:
    """Decode large images in tiles. Attention slicing is left off: on CPU, torch's SDPA flash
    kernel already keeps attention memory linear, and slicing only costs time."""
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "use_tiling"):
        return
    if width * height > TILED_DECODE_PIXELS:
        vae.enable_tiling()
    else:
        vae.disable_tiling()


def _call_pipeline(
    pipe: Any, prompt: str, negative_prompt: str, seeds: list[int], params: dict[str, Any], context: ToolContext
) -> list[Any]:
    import torch

    accepted = inspect.signature(pipe.__call__).parameters
    steps = params["steps"]

    def on_step_end(_pipe: Any, step: int, _timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        context.progress(min(1.0, (step + 1) / steps) * 0.99, f"step {step + 1}/{steps}")
        context.check_cancelled()  # raises Cancelled out of the pipeline's loop
        return callback_kwargs

    _fit_memory(pipe, params["width"], params["height"])
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "num_inference_steps": steps,
        "guidance_scale": params["guidance"],
        "width": params["width"],
        "height": params["height"],
        "num_images_per_prompt": len(seeds),
        # one generator per image: image i is reproducible from seeds[i] alone
        "generator": [torch.Generator(device="cpu").manual_seed(s) for s in seeds],
        "callback_on_step_end": on_step_end,
    }
    if negative_prompt and "negative_prompt" in accepted:
        kwargs["negative_prompt"] = negative_prompt
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    try:
        with torch.inference_mode():
            out = pipe(**kwargs)
    except ValueError as exc:  # pipelines validate their arguments with ValueError
        raise InputError(f"generate_image: {str(exc).splitlines()[0]}") from exc
    return list(out.images)
