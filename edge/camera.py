"""A simulated camera: cycles through a list of photos (a folder, or the photos that ship with
scikit-image and scikit-learn), or stays on one picture after `show(name)`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["CameraSource", "default_photos", "load_folder"]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def default_photos() -> list[tuple[str, np.ndarray]]:
    """RGB uint8 photos from scikit-image / scikit-learn, when those are installed (a simulator
    convenience: a real device has a real camera)."""
    photos: list[tuple[str, np.ndarray]] = []
    try:
        from skimage import data

        for name in ("chelsea", "coffee", "astronaut", "rocket", "motorcycle_left"):
            fn = getattr(data, name, None)
            if fn is None:
                continue
            try:
                img = np.asarray(fn())
            except Exception:  # a data file missing from a trimmed install
                continue
            if img.ndim == 3 and img.shape[2] >= 3:
                photos.append((name, np.ascontiguousarray(img[..., :3]).astype(np.uint8)))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        ds = load_sample_images()
        for fname, img in zip(ds.filenames, ds.images):
            photos.append((Path(fname).stem, np.asarray(img, dtype=np.uint8)))
    except ImportError:
        pass
    return photos


def load_folder(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    out = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() in _IMAGE_SUFFIXES:
            with Image.open(p) as im:
                out.append((p.stem, np.asarray(im.convert("RGB"))))
    return out


class CameraSource:
    def __init__(self, photos: list[tuple[str, np.ndarray]] | None = None, interval_s: float = 5.0) -> None:
        self.photos = list(photos) if photos is not None else default_photos()
        if not self.photos:
            # no photo packages: a plain grey frame keeps the device answering
            self.photos = [("grey", np.full((240, 320, 3), 128, np.uint8))]
        self.interval_s = interval_s
        self._pinned: int | None = None
        self._start = time.monotonic()
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.photos]

    def show(self, name: str | None) -> None:
        """Stay on photo `name` (None: resume cycling)."""
        with self._lock:
            if name is None:
                self._pinned = None
                return
            if name not in self.names:
                raise ValueError(f"no photo {name!r}; have {self.names}")
            self._pinned = self.names.index(name)

    def current(self) -> tuple[str, np.ndarray]:
        with self._lock:
            if self._pinned is not None:
                return self.photos[self._pinned]
            i = int((time.monotonic() - self._start) / max(self.interval_s, 1e-3)) % len(self.photos)
            return self.photos[i]
