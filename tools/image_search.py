"""image_search: find photos in the indexed library by a text description and/or an example image.

The library is an `indexes.images.ImageIndex` folder ([images] index_path, built with
`polymodal images index FOLDER`). Hits carry the photo path, score, cached thumbnail and the name
of the encoder that ranked them. From Python, `search(image=array_or_PIL)` also takes pixels.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import InputError, ToolError
from tools.base import Tool, ToolContext

__all__ = ["ImageSearchTool", "ImageSearchResult"]


@dataclass
class ImageSearchResult:
    query: str
    image: str  # the example image's path ("" for text-only or in-memory images)
    hits: list[Any] = field(default_factory=list)  # indexes.images.ImageHit
    encoder: str = ""
    index: str = ""
    folder: str = ""
    tag: str = ""

    @property
    def artifacts(self) -> list[str]:
        return [h.path for h in self.hits]

    @property
    def thumbnails(self) -> list[str]:
        return [h.thumbnail for h in self.hits]

    def summary(self) -> str:
        what = f"'{self.query}'" if self.query else ""
        if self.image:
            what = f"{what} and {Path(self.image).name}" if what else f"photos like {Path(self.image).name}"
        if not self.hits:
            return f"No photos found for {what or 'the query'} ({self.encoder})."
        best = ", ".join(f"{Path(h.path).name} ({h.score:.2f})" for h in self.hits)
        return f"Found {len(self.hits)} photo(s) for {what} with {self.encoder}: {best}."


class ImageSearchTool(Tool):
    name = "image_search"
    description = ("Find photos in the user's indexed photo library by a text description (any language) "
                   "or by an example image, optionally only under one folder or with one tag.")
    examples = (
        "find photos of a cat",
        "show me pictures of the beach at sunset",
        "找一张咖啡的照片",
        "find photos similar to this one",
        "search my photos for a red car",
    )

    def __init__(self, index_path: str | Path | None = None, config: Any = None, encoder: Any = None) -> None:
        super().__init__()
        self.config = config
        images_cfg = getattr(config, "images", config)
        if index_path:
            self.index_path = Path(index_path).expanduser()
        elif config is not None and hasattr(config, "images_path"):
            self.index_path = config.images_path()
        else:
            from polymodal.config import Config

            self.index_path = Config().images_path()
        self._images_cfg = images_cfg
        self._encoder = encoder
        self._index = None
        self._open_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any = None) -> "ImageSearchTool":
        return cls(config=config)

    def setup(self) -> None:
        """Open the index (read-only) and load its encoder, so the first search is not the slow one."""
        idx = self.index
        if hasattr(idx.encoder, "setup"):
            idx.encoder.setup()

    @property
    def index(self):
        if self._index is None:
            with self._open_lock:
                if self._index is None:
                    from indexes.images import ImageIndex

                    if not (self.index_path / "manifest.json").exists():
                        raise ToolError(f"no image index at {self.index_path}: build one with "
                                        f"'polymodal images index FOLDER --index {self.index_path}'")
                    self._index = ImageIndex.open(self.index_path, self._encoder, config=self._images_cfg,
                                                  read_only=True)
        return self._index

    def run(self, query: str = "", image: str = "", k: int = 5, folder: str = "", tag: str = "", *,
            context: ToolContext | None = None) -> ImageSearchResult:
        """Find photos by words and/or an example image.

        Args:
            query: what the photo shows, in words (English, Chinese, ...)
            image: path of an example image: find photos that look like it
            k: how many photos to return
            folder: only photos under this folder
            tag: only photos with this tag
        """
        if image and not Path(image).expanduser().is_file():
            raise InputError(f"example image not found: {image}")
        return self.search(query=query, image=str(Path(image).expanduser()) if image else None, k=k,
                           folder=folder, tag=tag)

    def search(self, query: str = "", image: Any = None, k: int = 5, folder: str = "", tag: str = "") -> ImageSearchResult:
        """Python entry point: `image` may be a path, a PIL image or an HxWxC array."""
        if not (query or "").strip() and image is None:
            raise InputError("image_search needs a text query or an example image")
        if not 1 <= int(k) <= 100:
            raise InputError("k must be between 1 and 100")
        idx = self.index
        try:
            hits = idx.search(query, image=image, k=int(k), folder=folder, tag=tag)
        except OSError as exc:
            raise ToolError(f"image search failed: {exc}") from exc
        return ImageSearchResult(query=query or "", image=image if isinstance(image, str) else "", hits=hits,
                                 encoder=idx.encoder.name, index=str(idx.folder), folder=folder, tag=tag)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
