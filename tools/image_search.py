"""image_search: find photos in the indexed library by a text description and/or an example image.

The library is an `indexes.images.ImageIndex` folder ([images] index_path, built with
`polymodal images index FOLDER`). Hits carry the photo path, score, cached thumbnail and the name
of the encoder that ranked them. From Python, `search(image=array_or_PIL)` also takes pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import InputError, ToolError
from polymodal.lazy import load_once
from tools.base import Cues, PlanExample, Tool, ToolContext, ToolResult

__all__ = ["ImageSearchTool", "ImageSearchResult"]


@dataclass
class ImageSearchResult(ToolResult):
    query: str
    image: str  # the example image's path ("" for text-only or in-memory images)
    hits: list[Any] = field(default_factory=list)  # indexes.images.ImageHit
    encoder: str = ""
    index: str = ""
    folder: str = ""
    tag: str = ""
    filters: dict[str, Any] = field(default_factory=dict)  # date range, faces
    understood: dict[str, Any] = field(default_factory=dict)  # dates, people, quoted text read from the query

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
    description = (
        "Find photos in the user's indexed photo library by a text description (any language) "
        "or by an example image; also by who and what is in it (faces, text in the picture), folder and "
        "file names, date, camera and place; optionally only under one folder, in a date range or with faces."
    )
    examples = (
        "find photos of a cat",
        "show me pictures of the beach at sunset",
        "找一张咖啡的照片",
        "find photos similar to this one",
        "search my photos for a red car",
        "Find a photo of my bicycle.",
        "Show me pictures of the beach from my library.",
        "Search my images for a rocket.",
        "Any photos of coffee?",
        "Find images similar to this one.",
        "找一张猫的照片",
        "给我看看相册里有自行车的照片",
        "搜索宇航员的照片",
        "有没有马的照片？",
        "找几张和这张构图差不多的照片",
    )
    cues = Cues(
        patterns=(
            re.compile(
                r"\b(find|search|show|look for|look up|get|pull up|retrieve|browse|give me|fetch|locate|any|"
                r"have we got|do (i|we) have)\b[^.?!;]{0,40}?"
                r"\b(?P<object>photos?|pictures?|images?|pics|shots|snapshots)\b",
                re.I,
            ),
            re.compile(
                r"\b(photos?|pictures?|images?|pics)\b[^.?!;]{0,20}\b(in|from) (my|our|the) "
                r"(library|gallery|album|collection|photo library|image library)",
                re.I,
            ),
            re.compile(
                r"\b(similar|like this|looks like this|same as this|matching) (one|photos?|pictures?|images?)?", re.I
            ),
            re.compile(
                r"(找|搜|查|检索|显示|看看|给我看|有没有|翻|调出|列出)[^，。？！；]{0,14}?"
                r"(?P<object>照片|图片|相片|图像|相册|图库|图)"
            ),
            re.compile(r"(照片|图片|相片|图库|相册)(库)?(里|中)"),
            re.compile(r"(相似|类似|相同|一样|差不多)的(照片|图片|图|相片)"),
        ),
        weak=(re.compile(r"\b(photos?|pictures?|pics|snapshots?)\b|照片|相片|相册|图库", re.I),),
        strip=(
            re.compile(
                r"^\s*(please\s+)?(can you\s+|could you\s+)?(find|search( for)?|show( me)?|look for|look up|"
                r"get( me)?|pull up|retrieve|fetch|give me|locate|any)\s+((me\s+)?(a|an|the|some|all|my|any)\s+)?"
                r"(photos?|pictures?|images?|pics|shots)\s*(of|with|showing|that show)?\s+",
                re.I,
            ),
            re.compile(r"^\s*(请)?(帮我)?(找|搜索|搜|查找|检索|给我看看|看看|显示)(一下)?(一张|几张|一些|些)?"),
            re.compile(
                r"\s+(in|from) (my|our|the) (library|gallery|album|collection|photo library|image library)\s*[.?!]*$",
                re.I,
            ),
            re.compile(r"(的)?(照片|图片|相片|图像)(吧)?[。？！?!]*$"),
        ),
        imperative_only=True,
        yields_to=("generate_image",),  # "draw a picture like the photos in my library" is one generation
        attachment=True,
    )
    plan_examples = (
        PlanExample(
            "把文档里关于模型压缩的要点总结一下，再找一张有雪山的照片",
            (("rag_answer", {"main": "模型压缩的要点"}), ("image_search", {"main": "雪山"})),
        ),
    )
    max_concurrency = 2

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

    @classmethod
    def from_config(cls, config: Any = None, models: Any = None) -> "ImageSearchTool":
        return cls(config=config)

    def setup(self) -> None:
        """Open the index (read-only) and load its encoder, so the first search is not the slow one."""
        idx = self.index
        if hasattr(idx.encoder, "setup"):
            idx.encoder.setup()

    @load_once
    def index(self) -> Any:
        """The image index, opened read-only on first use."""
        from indexes.images import ImageIndex

        if not (self.index_path / "manifest.json").exists():
            raise ToolError(
                f"no image index at {self.index_path}: build one with "
                f"'polymodal images index FOLDER --index {self.index_path}'"
            )
        return ImageIndex.open(self.index_path, self._encoder, config=self._images_cfg, read_only=True)

    def run(
        self,
        query: str = "",
        image: str = "",
        k: int = 5,
        folder: str = "",
        tag: str = "",
        date_from: str = "",
        date_to: str = "",
        has_faces: bool | None = None,
        *,
        context: ToolContext | None = None,
    ) -> ImageSearchResult:
        """Find photos by words and/or an example image.

        Args:
            query: what the photo shows, in words (English, Chinese, ...)
            image: path of an example image: find photos that look like it
            k: how many photos to return
            folder: only photos under this folder
            tag: only photos with this tag
            date_from: only photos taken on or after this date (YYYY-MM-DD)
            date_to: only photos taken on or before this date (YYYY-MM-DD)
            has_faces: true: only photos with faces; false: only photos without
        """
        if image and not Path(image).expanduser().is_file():
            raise InputError(f"example image not found: {image}")
        filters = {"date_from": date_from, "date_to": date_to, "has_faces": has_faces}
        return self.search(
            query=query,
            image=str(Path(image).expanduser()) if image else None,
            k=k,
            folder=folder,
            tag=tag,
            filters={f: v for f, v in filters.items() if v not in ("", None)},
        )

    def search(
        self,
        query: str = "",
        image: Any = None,
        k: int = 5,
        folder: str = "",
        tag: str = "",
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
    ) -> ImageSearchResult:
        """Python entry point: `image` may be a path, a PIL image or an HxWxC array."""
        if not (query or "").strip() and image is None:
            raise InputError("image_search needs a text query or an example image")
        if not 1 <= int(k) <= 100:
            raise InputError("k must be between 1 and 100")
        idx = self.index
        try:
            hits = idx.search(query, image=image, k=int(k), folder=folder, tag=tag, filters=filters, mode=mode)
            understood = idx.understand(query).understood() if query and idx.has_signals and mode != "dense" else {}
        except OSError as exc:
            raise ToolError(f"image search failed: {exc}") from exc
        return ImageSearchResult(
            query=query or "",
            image=image if isinstance(image, str) else "",
            hits=hits,
            encoder=idx.encoder.name,
            index=str(idx.folder),
            folder=folder,
            tag=tag,
            filters=dict(filters or {}),
            understood=understood,
        )

    def close(self) -> None:
        if load_once.loaded(self, "index"):
            self.index.close()
            del self.index
