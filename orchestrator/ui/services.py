"""Shared services behind the app: config, agent, knowledge base and image library paths,
per-tool concurrency limits, and each browser tab's state.

Plain functions (no gradio at import), so they are tested without a browser.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.ui.fleet import FleetService
from polymodal.config import Config
from polymodal.errors import InputError, PolymodalError
from polymodal.lazy import load_once

__all__ = ["AppServices", "TabState", "short_error", "IMAGE_TYPES", "CHAT_CONCURRENCY"]

log = logging.getLogger("polymodal.app")

IMAGE_TYPES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Per-tool concurrency across all users: one diffusion run at a time keeps memory bounded, while
# chats that only retrieve or ask a device go on beside it.
CHAT_CONCURRENCY = 8


def short_error(exc: BaseException) -> str:
    """One line for a person: a PolymodalError's own message; anything else is logged, not shown."""
    if isinstance(exc, PolymodalError):
        return str(exc)
    log.error("app handler failed", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}); the details are in the server log."


# -- services shared by every browser tab ------------------------------------------------------


class AppServices:
    """What the handlers share: config, the Agent (built on first use), the app's data folders and
    the edge fleet. Everything per user lives in `TabState`."""

    def __init__(self, config: Config, agent: Any = None, fleet: FleetService | None = None) -> None:
        self.config = config
        self.root = config.paths.data() / "app"
        self.cache = self.root / "cache"  # gradio's upload folder and our thumbnails: the only files served
        self.uploads = self.root / "uploads"
        self.thumbs = self.cache / "thumbs"
        for d in (self.cache, self.uploads, self.thumbs):
            d.mkdir(parents=True, exist_ok=True)
        if agent is not None:
            self.agent = agent
        self.fleet = fleet or FleetService(config, self.agent_tools)
        self.kb_lock = threading.Lock()
        self.images_lock = threading.RLock()
        self.image_reader: Any = None  # the image library's shared reader, opened by the library handlers

    @load_once
    def agent(self) -> Any:
        """The Agent, built on first use (once, however many tabs ask at the same time)."""
        from orchestrator.agent import Agent

        return Agent.from_config(self.config)

    def built_agent(self) -> Any:
        """The Agent if it is built, else None: never builds it (a status view must not load the models)."""
        return self.agent if load_once.loaded(self, "agent") else None

    def agent_tools(self) -> Mapping[str, Any]:
        """The built Agent's tools by name ({} before it is built)."""
        agent = self.built_agent()
        return getattr(agent, "tools", {}) if agent is not None else {}

    @property
    def max_upload_bytes(self) -> int:
        return int(self.config.app.max_upload_mb) * 2**20

    def servable(self, path: str | Path, max_side: int = 1024) -> str | None:
        """A copy of an image inside the served cache (downscaled), or None if it cannot be read."""
        from PIL import Image, ImageOps

        p = Path(path)
        try:
            st = p.stat()
        except OSError:
            return None
        key = hashlib.sha256(f"{p.resolve()}:{st.st_mtime_ns}:{st.st_size}:{max_side}".encode()).hexdigest()[:24]
        out = self.thumbs / f"{key}.png"
        if out.exists():
            return str(out)
        try:
            with Image.open(p) as im:
                im = ImageOps.exif_transpose(im)
                im.thumbnail((max_side, max_side))
                tmp = out.with_suffix(".tmp.png")
                im.convert("RGB" if im.mode not in ("RGB", "RGBA") else im.mode).save(tmp, "PNG")
                os.replace(tmp, out)
        except Exception:  # noqa: BLE001 - an unreadable image is shown as its path, not an error
            return None
        return str(out)

    def save_b64_image(self, b64: str) -> str | None:
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            return None
        out = self.thumbs / f"frame-{hashlib.sha256(raw).hexdigest()[:24]}.jpg"
        if not out.exists():
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, out)
        return str(out)

    @property
    def ingest_roots(self) -> list[Path]:
        """[app] ingest_roots, resolved: the only server folders the page may ingest or index."""
        return [Path(r).expanduser().resolve() for r in self.config.app.ingest_roots]

    def within_roots(self, path: str | Path) -> bool:
        real = Path(path).resolve()
        return any(real.is_relative_to(r) for r in self.ingest_roots)

    def server_folder(self, folder: str) -> Path:
        """`folder` on the server, resolved (`~`, `..`, symlinks), if it lies under [app] ingest_roots;
        else a one-line refusal. The roots are checked before the folder is looked at, so a refusal
        tells nothing about what exists outside them."""
        shown = folder if folder.isprintable() else repr(folder)
        roots = self.ingest_roots
        if not roots:
            raise InputError(
                "this app reads no folders on the server ([app] ingest_roots is empty): upload the files instead"
            )
        try:
            real = Path(folder).expanduser().resolve()
        except (OSError, ValueError, RuntimeError):
            raise InputError(f"not a folder path: {shown}") from None
        if not any(real.is_relative_to(r) for r in roots):
            where = ", ".join(map(str, roots))
            raise InputError(f"{shown} is outside the folders this app may read ([app] ingest_roots: {where})")
        if not real.is_dir():
            raise InputError(f"not a folder: {shown}")
        return real

    def accept_upload(self, path: str | Path, allowed: tuple[str, ...], sub: str, by_content: bool = False) -> Path:
        """Check an uploaded file's type and size and keep a copy in the app's uploads folder: under its
        name (a knowledge-base document: uploading it again updates it), or with `by_content` in a folder
        named by its bytes, so two users' same-named files never overwrite each other."""
        src = Path(path)
        suffix = src.suffix.lower()
        if suffix not in allowed:
            raise InputError(f"{src.name}: file type {suffix or '(none)'} is not accepted here ({', '.join(allowed)})")
        size = src.stat().st_size
        if size > self.max_upload_bytes:
            raise InputError(
                f"{src.name} is {size / 2**20:.1f} MB; the upload limit is {self.config.app.max_upload_mb} MB"
            )
        name = re.sub(r"[^\w.\-]+", "_", src.name).lstrip(".") or f"upload{suffix}"
        dest_dir = self.uploads / sub
        if by_content:
            with open(src, "rb") as f:
                dest_dir = dest_dir / hashlib.file_digest(f, "sha256").hexdigest()[:24]
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        tmp = dest_dir / f".{name}.{uuid.uuid4().hex[:8]}.part"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest


# -- one browser tab ---------------------------------------------------------------------------


@dataclass
class TabState:
    """Per browser tab (a gr.State): its own conversation, rendered chat and cancel flags."""

    conversation: Any = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    cancels: dict[str, threading.Event] = field(default_factory=dict)

    def new_cancel(self, op: str) -> threading.Event:
        self.cancels[op] = threading.Event()
        return self.cancels[op]

    def cancel(self, op: str) -> None:
        ev = self.cancels.get(op)
        if ev is not None:
            ev.set()
