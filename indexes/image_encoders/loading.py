"""Reading photos safely: one decode per file, EXIF orientation, RGB out, bad files as one-line reasons.

Every image that reaches an encoder or a thumbnail went through `load_image`: first frame of an
animation, EXIF rotation applied, alpha composited on white, greyscale/palette/16-bit/CMYK turned
into 8-bit RGB. Corrupt, truncated, non-image and decompression-bomb files raise `UnsupportedFile`.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from polymodal.errors import UnsupportedFile

__all__ = ["IMAGE_EXTENSIONS", "LoadedImage", "load_image", "to_rgb", "as_pil", "is_image_path"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif"})
# MPO is what many phone cameras write inside a .jpg; Pillow names it separately.
_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF")
# Encoders look at 224-256 px and thumbnails are 256 px: JPEG decodes at 1/2..1/8 scale almost for free
# (draft keeps both sides >= this, so a 4000x3000 photo decodes at 500x375).
DRAFT_SIZE = 256


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, orientation applied, possibly reduced by JPEG draft decoding
    width: int  # original pixel size, after EXIF rotation
    height: int
    format: str
    sha256: str
    exif: Any = None  # PIL.Image.Exif of the file (date, camera, GPS), read before rotation


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, data: bytes | None = None, draft: int | None = DRAFT_SIZE) -> LoadedImage:
    """Read, hash and decode one image file; `UnsupportedFile` with a one-line reason if it can't be."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnsupportedFile(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise UnsupportedFile(f"{path.name}: empty file")
    digest = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat the warning as the bomb it is.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=_formats())
            size = _oriented_size(img)
            if draft and img.format in ("JPEG", "MPO"):
                img.draft("RGB", (draft, draft))
            img.seek(0)  # first frame of a GIF / animated WebP
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnsupportedFile(
                f"{path.name}: too many pixels (decompression-bomb limit {Image.MAX_IMAGE_PIXELS:,})"
            ) from exc
        except UnidentifiedImageError as exc:
            raise UnsupportedFile(f"{path.name}: not an image (or an unsupported format)") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if "truncated" in reason:
                reason = "truncated file"
            raise UnsupportedFile(f"{path.name}: corrupt image ({reason})") from exc
    fmt = img.format or "?"
    try:
        exif = img.getexif()
    except Exception:  # unreadable EXIF: the pixels still count
        exif = None
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # a broken EXIF block must not lose an otherwise good photo
        pass
    return LoadedImage(image=to_rgb(img), width=size[0], height=size[1], format=fmt, sha256=digest, exif=exif)


def _formats() -> list[str]:
    Image.init()  # registers every plugin (MPO is not among the preinitialised ones)
    return [f for f in _FORMATS if f in Image.OPEN]


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    w, h = img.size
    try:
        if img.getexif().get(0x0112) in (5, 6, 7, 8):  # orientations that swap the axes
            return h, w
    except Exception:
        pass
    return w, h


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB: alpha composited on white, 16-bit and float scaled, palettes and CMYK converted."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def as_pil(image: "Image.Image | np.ndarray | str | Path") -> Image.Image:
    """A PIL RGB image from a PIL image, an HxW / HxWxC array (uint8, or float in [0, 1]) or a path."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (str, Path)):
        return load_image(image).image
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)) or arr.size == 0:
        raise UnsupportedFile(f"image array must be HxW or HxWx(1|3|4), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
        if arr.max(initial=0.0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    mode = {2: "L"}.get(arr.ndim) or {3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return to_rgb(Image.fromarray(arr, mode))
