"""How often the int8 classifier's top-1 is the float model's, measured on photos OUTSIDE the
calibration pool (`edge.convert.calibration_pool`): agreement on the photos int8 was calibrated on
says little about a device's camera. Build-time only, like edge.convert; devices never import it.

    photos = heldout_photos()                   # offline photos not in the pool (checked by hash)
    report = measure(MODEL_DIR / "efficientnet_lite0_int8.tflite", heldout_views(photos))

The held-out photos: the colour photos gradio ships as demo assets (cheetahs, a lion, a tower,
a figurine; the `[ui]` extra) and scikit-image's grey-level photos not in the pool (as RGB).
Each gives 8 views of 224x224 (`VIEWS`): the device's centre crop, its mirror image, four corner
crops of 75% of each side, a warm colour cast and a 30% darker copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["VIEWS", "heldout_photos", "heldout_views", "near_duplicates", "pixel_hash", "measure", "agreement"]

GRADIO_PHOTOS = (
    "media_assets/images/cheetah.jpg",
    "media_assets/images/cheetah1.jpg",
    "media_assets/images/groot.jpeg",
    "media_assets/images/lion.jpg",
    "media_assets/images/tower.jpg",
    "test_data/cheetah2.jpg",
)
SKIMAGE_GREY = ("camera", "coins", "moon", "page", "text", "clock", "cell", "brick", "grass", "gravel")
VIEWS = ("centre", "mirror", "corner-tl", "corner-tr", "corner-bl", "corner-br", "warm", "dark")


def pixel_hash(img: np.ndarray) -> str:
    """sha256 of an image's shape and pixels."""
    arr = np.ascontiguousarray(img)
    return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).hexdigest()


def heldout_photos() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) photos that ship offline and are not calibration photos; duplicates
    (gradio ships cheetah1.jpg twice) dropped by pixel hash."""
    from PIL import Image
    from skimage import data

    photos: list[tuple[str, np.ndarray]] = []
    spec = importlib.util.find_spec("gradio")  # finds the package folder without importing gradio
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0])
        for rel in GRADIO_PHOTOS:
            if (folder / rel).is_file():
                with Image.open(folder / rel) as im:
                    photos.append((Path(rel).stem, np.asarray(im.convert("RGB"))))
    for name in SKIMAGE_GREY:
        grey = np.asarray(getattr(data, name)())
        photos.append((name, np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)))
    seen: set[str] = set()
    unique = []
    for name, img in photos:
        key = pixel_hash(img)
        if key not in seen:
            seen.add(key)
            unique.append((name, img))
    return unique


def _views(img: np.ndarray, size: int = 224) -> list[np.ndarray]:
    from edge.capabilities import center_crop

    h, w = img.shape[:2]
    ch, cw = int(h * 0.75), int(w * 0.75)
    centre = center_crop(img, size).astype(np.float32)
    corners = [img[t : t + ch, left : left + cw] for t in (0, h - ch) for left in (0, w - cw)]
    warm = np.clip(centre * np.array([1.12, 1.0, 0.88], np.float32), 0, 255)
    return [centre, centre[:, ::-1], *(center_crop(c, size).astype(np.float32) for c in corners), warm, centre * 0.7]


def heldout_views(photos: Sequence[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """("photo/view", 224x224x3 float32 pixels 0-255, whole numbers) for every photo and view."""
    return [(f"{name}/{view}", np.round(x)) for name, img in photos for view, x in zip(VIEWS, _views(img))]


def _thumb(img: np.ndarray) -> np.ndarray:
    """A 32x32 grey thumbnail, zero mean and unit norm (so a dot product is a correlation)."""
    from PIL import Image

    grey = Image.fromarray(np.asarray(img, np.uint8)).convert("L").resize((32, 32), Image.BILINEAR)
    t = np.asarray(grey, np.float64)
    t = t - t.mean()
    return t / (np.linalg.norm(t) or 1.0)


def near_duplicates(
    a: Sequence[tuple[str, np.ndarray]], b: Sequence[tuple[str, np.ndarray]], min_correlation: float = 0.9
) -> list[tuple[str, str]]:
    """Pairs (name in a, name in b) that are the same photo: equal pixels, or 32x32 grey thumbnails
    (either one mirrored) correlated above `min_correlation` (a resized, recoloured or grey copy)."""
    thumbs_b = [(n, pixel_hash(img), _thumb(img)) for n, img in b]
    pairs = []
    for name, img in a:
        key, t = pixel_hash(img), _thumb(img)
        for other, other_key, u in thumbs_b:
            close = max(float((t * u).sum()), float((t[:, ::-1] * u).sum())) > min_correlation
            if key == other_key or close:
                pairs.append((name, other))
    return pairs


def agreement(int8_logits: np.ndarray, float_logits: np.ndarray) -> dict[str, Any]:
    """n, the share of images where int8's top-1 is float's, and where float's top-1 is in int8's top-3."""
    top1 = int8_logits.argmax(-1) == float_logits.argmax(-1)
    top3 = [int(f.argmax()) in np.argsort(-q)[:3] for f, q in zip(float_logits, int8_logits)]
    return {"n": len(top1), "top1_agreement": float(np.mean(top1)), "float_top1_in_int8_top3": float(np.mean(top3))}


def float_logits(model: Any, xs: np.ndarray, batch: int = 16) -> np.ndarray:
    """The PyTorch float model's logits for pixels 0-255 (normalised as the int8 model does inside)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(xs), batch):
            x = torch.from_numpy((xs[i : i + batch] - 127.0) / 128.0).permute(0, 3, 1, 2)
            out.append(model(x).numpy())
    return np.concatenate(out)


def measure(int8_path: Path, views: Sequence[tuple[str, np.ndarray]], model: Any = None) -> dict[str, Any]:
    """Top-1 agreement of the int8 .tflite with the float PyTorch model on `views`: over all of
    them, per source (gradio's colour photos, scikit-image's grey ones) and per view kind (the
    centre crops alone are one view per photo)."""
    from edge.convert import tflite_predict, torch_efficientnet_lite0

    model = model if model is not None else torch_efficientnet_lite0()
    names = [n for n, _ in views]
    xs = np.stack([x for _, x in views]).astype(np.float32)
    q, f = tflite_predict(int8_path, xs), float_logits(model, xs)
    kinds = np.array([n.split("/")[1] for n in names])
    grey = np.array([n.split("/")[0] in SKIMAGE_GREY for n in names])
    report = {"all_views": agreement(q, f), "photos": len({n.split("/")[0] for n in names})}
    report["by_source"] = {k: agreement(q[m], f[m]) for k, m in (("colour", ~grey), ("grey", grey)) if m.any()}
    report["by_view"] = {v: agreement(q[kinds == v], f[kinds == v]) for v in VIEWS if (kinds == v).any()}
    report["disagreements"] = [n for n, a, b in zip(names, q.argmax(-1), f.argmax(-1)) if a != b]
    return report
