"""open_clip encoders: any open_clip architecture with a local checkpoint (or a pretrained tag where a
hub is reachable), torch or ONNX Runtime for the image tower, text padded to the longest prompt.

    OpenClipEncoder("ViT-B-32", "/models/vit-b-32.safetensors")
    OpenClipEncoder("/models/my-arch.json", "/models/my.safetensors", runtime="onnx")

A model name ending in .json is an open_clip model config file (registered under its stem), which
is how tests build a tiny random CLIP offline (`build_tiny_clip`). No weights ship offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from indexes.image_encoders import EncodedImages, ImageEncoderBase, normalise
from indexes.image_encoders.loading import as_pil
from indexes.image_encoders.onnx_runtime import cached_export, file_key, onnxruntime_available, session
from polymodal.errors import ConfigError, ModelUnavailable, require
from polymodal.lazy import load_once

__all__ = ["OpenClipEncoder", "build_tiny_clip", "TINY_CLIP_CONFIG"]

# A CLIP small enough to build, save and run in a test in about a second.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def _register_config(model: str) -> str:
    """A .json model config becomes an open_clip architecture named after the file's stem."""
    if not model.endswith(".json"):
        return model
    path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigError(f"open_clip model config not found: {path}")
    open_clip = require("open_clip", "clip", "open_clip models")
    if path.stem not in open_clip.list_models():
        open_clip.add_model_config(path)
    return path.stem


class OpenClipEncoder(ImageEncoderBase):
    def __init__(
        self,
        model: str = "ViT-B-32",
        checkpoint: str = "",
        runtime: str = "auto",
        batch_size: int = 16,
        cache_dir: str | Path | None = None,
    ) -> None:
        if runtime not in ("auto", "torch", "onnx"):
            raise ConfigError(f"open_clip runtime must be auto, torch or onnx, got {runtime!r}")
        # auto: ONNX Runtime for the image tower when installed (exported once, cached), else torch
        runtime = ("onnx" if onnxruntime_available() else "torch") if runtime == "auto" else runtime
        self.model_ref = model
        self.checkpoint = str(Path(checkpoint).expanduser()) if checkpoint and os.sep in checkpoint else checkpoint
        self.runtime = runtime
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.name = self.name_for(model, self.checkpoint)

    @staticmethod
    def name_for(model: str, checkpoint: str) -> str:
        """The encoder name (index manifests compare it). The runtime is not part of it: torch and
        ONNX vectors share one space."""
        arch = Path(model).stem if model.endswith(".json") else model
        return f"open_clip:{arch}@{Path(checkpoint).stem if checkpoint else 'random'}"

    # -- loading -------------------------------------------------------------------------------
    def _load(self):
        open_clip = require("open_clip", "clip", "open_clip image search")
        arch = _register_config(self.model_ref)
        ckpt = self.checkpoint
        if ckpt and os.sep in ckpt and not os.path.isfile(ckpt):
            raise ModelUnavailable(f"open_clip checkpoint not found: {ckpt}")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=ckpt or None, device="cpu", pretrained_text=False
            )
        except RuntimeError as exc:
            msg = " ".join(str(exc).split())[:200]
            raise ModelUnavailable(f"cannot load open_clip '{arch}' with '{ckpt or 'no weights'}': {msg}") from exc
        model.eval()
        tokenizer = open_clip.get_tokenizer(arch)
        cfg = open_clip.get_model_config(arch) or {}
        return {
            "model": model,
            "preprocess": preprocess,
            "tokenizer": tokenizer,
            "dim": int(cfg.get("embed_dim") or model.text_projection.shape[-1]),
        }

    @property
    def dim(self) -> int:
        return self.model["dim"]

    def spec(self) -> dict[str, Any]:
        return {"backend": "open_clip", "open_clip_model": self.model_ref, "open_clip_checkpoint": self.checkpoint}

    @property
    def logit_scale(self) -> float:
        return float(self.model["model"].logit_scale.exp().item())

    def tag(self, image: Any, labels: Sequence[str]):
        self.tag_temperature = self.logit_scale  # the model's own learned temperature
        return super().tag(image, labels)

    # -- images ----------------------------------------------------------------------------------
    def pixels(self, images: Sequence[Any]) -> np.ndarray:
        pre = self.model["preprocess"]
        return np.stack([pre(as_pil(im)).numpy() for im in images]).astype(np.float32)

    def encode(self, images: Sequence[Any]) -> EncodedImages:
        if not len(images):
            return EncodedImages(np.zeros((0, self.dim), np.float32))
        out = []
        for s in range(0, len(images), self.batch_size):
            px = self.pixels(images[s : s + self.batch_size])
            out.append(self._run_onnx(px) if self.runtime == "onnx" else self._run_torch(px))
        return EncodedImages(normalise(np.concatenate(out)))

    def _run_torch(self, px: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model["model"].encode_image(torch.from_numpy(px)).float().numpy()

    @load_once
    def _onnx(self) -> Any:
        return session(self.export_onnx())

    def _run_onnx(self, px: np.ndarray) -> np.ndarray:
        return self._onnx.run(None, {"pixels": px})[0]

    def export_onnx(self) -> Path:
        """The image tower exported to ONNX once, cached under a key over architecture, weights, versions."""
        import open_clip
        import torch

        model = self.model["model"]
        key = [self.model_ref, self.checkpoint, open_clip.__version__, *file_key(self.checkpoint, self.model_ref)]
        return cached_export(
            "open_clip-visual",
            key,
            lambda: _visual_module(model),
            torch.zeros(2, 3, *_image_size(model)),
            ("embedding",),
            self.cache_dir,
        )

    # -- texts -----------------------------------------------------------------------------------
    def tokens(self, texts: Sequence[str]):
        """Token ids padded to the longest prompt in the batch, not to the context length."""
        ids = self.model["tokenizer"](list(texts))
        used = int((ids != 0).any(dim=0).nonzero().max().item()) + 1 if ids.numel() else 1
        return ids[:, :used]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        model = self.model["model"]
        out = []
        for s in range(0, len(texts), 64):
            with torch.inference_mode():
                if _has_plain_text_tower(model):
                    out.append(_encode_text_trimmed(model, self.tokens(texts[s : s + 64])).float().numpy())
                else:  # e.g. HF text towers: their own padding rules
                    full = self.model["tokenizer"](list(texts[s : s + 64]))
                    out.append(model.encode_text(full).float().numpy())
        return normalise(np.concatenate(out))


def _visual_module(model):
    """`model.encode_image` as a module of its own, for export."""
    import torch

    class Visual(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixels):
            return self.m.encode_image(pixels)

    return Visual(model).eval()


def _image_size(model) -> tuple[int, int]:
    size = getattr(model.visual, "image_size", 224)
    return (size, size) if isinstance(size, int) else tuple(size)


def _has_plain_text_tower(model) -> bool:
    return all(hasattr(model, a) for a in ("token_embedding", "positional_embedding", "transformer", "ln_final"))


def _encode_text_trimmed(model, text):
    """open_clip's CLIP.encode_text with the positional embedding and causal mask cut to the batch's
    length. The mask is causal and pooling reads the EOT position, so results equal the 77-token run."""
    import torch
    from open_clip.transformer import text_global_pool

    n = text.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast) + model.positional_embedding[:n].to(cast)
    mask = model.attn_mask[:n, :n] if model.attn_mask is not None else None
    x = model.ln_final(model.transformer(x, attn_mask=mask))
    x = text_global_pool(x, text, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    proj = model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return x


def build_tiny_clip(folder: str | Path, seed: int = 0, config: dict | None = None) -> tuple[Path, Path]:
    """Build a small randomly initialised CLIP offline and save it: (config .json, .safetensors)."""
    import torch

    open_clip = require("open_clip", "clip", "open_clip models")
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg_path = folder / "polymodal-tiny-clip.json"
    cfg_path.write_text(json.dumps(config or TINY_CLIP_CONFIG), encoding="utf-8")
    open_clip.add_model_config(cfg_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(cfg_path.stem, pretrained=None, device="cpu", pretrained_text=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    ckpt = folder / "polymodal-tiny-clip.safetensors"
    save_file(state, str(ckpt))
    return cfg_path, ckpt
