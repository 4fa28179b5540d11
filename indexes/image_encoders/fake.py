"""A deterministic image encoder for tests: colour words in English and Chinese meet mean colours.

Joint space (8-d): an image is its mean RGB centred on grey; a text naming a colour ("red",
"蓝色") is that colour's RGB, centred the same way; other words hash into dimensions no image
uses, so they score ~0. Visual space (49-d): a 4x4 RGB miniature, so image->image search finds
the picture with the same layout. No model, no randomness.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Sequence

import numpy as np

from indexes.image_encoders import EncodedImages, ImageEncoderBase, normalise
from indexes.image_encoders.loading import as_pil

__all__ = ["ColourEncoder", "COLOURS"]

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (1, 0, 0),
    "红": (1, 0, 0),
    "green": (0, 1, 0),
    "绿": (0, 1, 0),
    "blue": (0, 0, 1),
    "蓝": (0, 0, 1),
    "yellow": (1, 1, 0),
    "黄": (1, 1, 0),
    "cyan": (0, 1, 1),
    "青": (0, 1, 1),
    "magenta": (1, 0, 1),
    "purple": (0.6, 0, 0.8),
    "紫": (0.6, 0, 0.8),
    "white": (1, 1, 1),
    "白": (1, 1, 1),
    "black": (0, 0, 0),
    "黑": (0, 0, 0),
}
_WORD = re.compile(r"[a-z]+|[\u4e00-\u9fff]")


class ColourEncoder(ImageEncoderBase):
    name = "fake-colour"
    visual_dim = 49
    tag_temperature = 10.0

    @property
    def dim(self) -> int:
        return 8

    def spec(self) -> dict[str, Any]:
        return {"backend": "fake"}

    def encode(self, images: Sequence[Any]) -> EncodedImages:
        joint = np.zeros((len(images), self.dim), dtype=np.float32)
        visual = np.zeros((len(images), self.visual_dim), dtype=np.float32)
        for i, image in enumerate(images):
            pil = as_pil(image)
            arr = np.asarray(pil.resize((32, 32)), dtype=np.float32) / 255.0
            joint[i, :3] = arr.reshape(-1, 3).mean(axis=0) - 0.5
            joint[i, 3] = 0.05  # keeps a pure-grey image's vector non-zero
            mini = np.asarray(pil.resize((4, 4)), dtype=np.float32).reshape(-1) / 255.0 - 0.5
            visual[i, :48] = mini
            visual[i, 48] = 0.05
        return EncodedImages(normalise(joint), normalise(visual))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            rgbs = [COLOURS[w] for w in words if w in COLOURS]
            if rgbs:
                out[i, :3] = np.mean(rgbs, axis=0) - 0.5
                out[i, 3] = 0.05
            else:
                h = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
                out[i, 4 + h[0] % 4] = 1.0
        return normalise(out) if len(texts) else out
