"""The Gradio app: one page to chat (streamed, cited, with the plan), build the knowledge base and
the image library, watch the devices and see which models serve each role.

    polymodal app                                   # 127.0.0.1:7860, the offline defaults
    demo = build_app(config, agent=fake_agent())    # tests inject an Agent over fake tools

`import app` starts nothing and imports no gradio; `build_app()` builds the Blocks, `launch()` serves.
The handlers are plain functions over `AppServices` so they are tested without a browser.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import queue
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from polymodal.config import Config, load_config
from polymodal.errors import Cancelled, DeviceError, InputError, PolymodalError

__all__ = ["build_app", "launch", "serve", "warm_up", "AppServices", "TabState", "TurnView", "FleetService", "short_error",
           "chat_turn", "ingest_documents", "list_documents", "delete_documents", "index_images", "search_images",
           "device_rows", "settings_report", "TOOL_LIMITS"]

log = logging.getLogger("polymodal.app")

IMAGE_TYPES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Per-tool concurrency across all users: one diffusion run at a time keeps memory bounded, while
# chats that only retrieve or ask a device go on beside it.
TOOL_LIMITS = {"generate_image": 1, "image_search": 2, "rag_answer": 2, "edge_query": 4}
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

    def __init__(self, config: Config, agent: Any = None, fleet: "FleetService | None" = None) -> None:
        self.config = config
        self.root = config.paths.data() / "app"
        self.cache = self.root / "cache"  # gradio's upload folder and our thumbnails: the only files served
        self.uploads = self.root / "uploads"
        self.thumbs = self.cache / "thumbs"
        for d in (self.cache, self.uploads, self.thumbs):
            d.mkdir(parents=True, exist_ok=True)
        self._agent = agent
        self._agent_lock = threading.Lock()
        if agent is not None:
            limit_tools(agent)
        self.fleet = fleet or FleetService(config, self)
        self.kb_lock = threading.Lock()
        self.images_lock = threading.RLock()
        self._image_reader: Any = None

    @property
    def agent(self) -> Any:
        if self._agent is None:
            with self._agent_lock:
                if self._agent is None:
                    from orchestrator.agent import Agent

                    agent = Agent.from_config(self.config)
                    limit_tools(agent)
                    self._agent = agent
        return self._agent

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

    def accept_upload(self, path: str | Path, allowed: tuple[str, ...], sub: str) -> Path:
        """Check an uploaded file's type and size and keep a copy in the app's uploads folder."""
        src = Path(path)
        suffix = src.suffix.lower()
        if suffix not in allowed:
            raise InputError(f"{src.name}: file type {suffix or '(none)'} is not accepted here ({', '.join(allowed)})")
        size = src.stat().st_size
        if size > self.max_upload_bytes:
            raise InputError(f"{src.name} is {size / 2**20:.1f} MB; the upload limit is {self.config.app.max_upload_mb} MB")
        name = re.sub(r"[^\w.\-]+", "_", src.name).lstrip(".") or f"upload{suffix}"
        dest_dir = self.uploads / sub
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        tmp = dest_dir / f".{name}.{uuid.uuid4().hex[:8]}.part"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest


def limit_tools(agent: Any, limits: dict[str, int] = TOOL_LIMITS) -> None:
    """Bound how many runs of each tool go at once across every user (a cancel still works while
    waiting). Wraps the tool's run target in place; calling it twice is harmless."""
    for name, tool in getattr(agent, "tools", {}).items():
        if name not in limits or getattr(tool, "_app_limited", False) or not hasattr(tool, "_target"):
            continue
        sem = threading.BoundedSemaphore(limits[name])
        target = tool._target()

        @functools.wraps(target)
        def limited(*args: Any, _target: Callable = target, _sem: threading.BoundedSemaphore = sem, **kwargs: Any) -> Any:
            ctx = kwargs.get("context")
            while not _sem.acquire(timeout=0.2):
                if ctx is not None:
                    ctx.check_cancelled()
            try:
                return _target(*args, **kwargs)
            finally:
                _sem.release()

        tool._target = lambda _f=limited: _f
        stream = getattr(tool, "stream", None)
        if callable(stream):  # the executor streams text from tools that offer it (rag_answer)
            tool.stream = _limited_stream(stream, sem)
        tool._app_limited = True


def _limited_stream(stream: Callable[..., Iterator[Any]], sem: threading.BoundedSemaphore) -> Callable[..., Iterator[Any]]:
    @functools.wraps(stream)
    def limited(*args: Any, **kwargs: Any) -> Iterator[Any]:
        ctx = kwargs.get("context")
        while not sem.acquire(timeout=0.2):
            if ctx is not None:
                ctx.check_cancelled()
        try:
            yield from stream(*args, **kwargs)
        finally:
            sem.release()

    return limited


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


# -- chat ---------------------------------------------------------------------------------------

@dataclass
class StepView:
    id: int
    tool: str
    args: dict[str, Any]
    state: str = "waiting"  # waiting | running | ok | failed
    seconds: float = 0.0
    progress: str = ""
    error: str = ""
    result: Any = None


class TurnView:
    """One question and its answer as chat messages, updated event by event."""

    def __init__(self, text: str, image: str | None, services: AppServices | None = None) -> None:
        self.text, self.image, self.services = text, image, services
        self.uid = uuid.uuid4().hex[:8]
        self.started = time.perf_counter()
        self.plan: Any = None
        self.steps: dict[int, StepView] = {}
        self.answer = ""
        self.result: Any = None
        self.error = ""
        self.cancelled = False

    def apply(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "plan":
            self.plan = event.plan
            for s in event.plan.steps:
                self.steps[s.id] = StepView(s.id, s.tool, dict(s.args))
        elif kind == "step_started":
            step = self.steps.setdefault(event.step_id, StepView(event.step_id, event.tool, dict(event.args)))
            step.state, step.args = "running", dict(event.args)
        elif kind == "step_progress" and event.step_id in self.steps:
            self.steps[event.step_id].progress = f"{event.fraction:.0%} {event.message}".strip()
        elif kind == "step_finished":
            r = event.result
            step = self.steps.setdefault(r.step_id, StepView(r.step_id, r.tool, dict(r.args)))
            step.state, step.seconds, step.error, step.result = ("ok" if r.ok else "failed"), r.seconds, r.error, r
        elif kind == "token":
            self.answer += event.text
        elif kind == "done":
            self.result = event.result
            self.answer = event.result.answer or self.answer

    @property
    def finished(self) -> bool:
        return self.result is not None or bool(self.error)

    def messages(self) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = [{"role": "user", "content": self.text}]
        if self.image:
            msgs.append({"role": "user", "content": {"path": self.image}})
        if self.plan is not None:
            msgs.append(self._plan_message())
        if self.answer.strip():
            msgs.append({"role": "assistant", "content": self.answer.strip()})
        elif not self.finished:
            msgs.append({"role": "assistant", "content": "…"})
        if self.result is not None:
            for step in self.result.steps:
                if step.ok:
                    msgs.extend(media_messages(step, self.services))
            msgs.extend(self._source_messages())
        if self.error:
            msgs.append({"role": "assistant", "content": f"⚠ {self.error}"})
        return msgs

    def _plan_message(self) -> dict[str, Any]:
        marks = {"waiting": "·", "running": "…", "ok": "✓", "failed": "✗"}
        lines = []
        for s in self.steps.values():
            args = ", ".join(f"{k}={_short(v)}" for k, v in s.args.items())
            line = f"{marks[s.state]} **{s.id}. {s.tool}**({args})"
            if s.state in ("ok", "failed"):
                line += f" — {s.seconds:.2f} s"
            elif s.state == "running" and s.progress:
                line += f" — {s.progress}"
            if s.error:
                line += f" — {s.error}"
            lines.append(line)
        if not lines:
            lines.append("No tool needed: answered directly.")
        why = ": ".join(x for x in (self.plan.source, self.plan.note) if x)
        if why:
            lines.append(f"_planned by {why}_")
        tools = " → ".join(s.tool for s in self.steps.values()) or "direct answer"
        meta: dict[str, Any] = {"title": f"Plan: {tools}", "id": f"plan-{self.uid}",
                                "status": "done" if self.finished else "pending"}
        if self.finished:
            total = (self.result.timings.get("total") if self.result is not None else None)
            meta["duration"] = round(total if total is not None else time.perf_counter() - self.started, 2)
            if self.result is not None:
                t = self.result.timings
                lines.append(" · ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "total"))
        return {"role": "assistant", "content": "\n\n".join(lines), "metadata": meta}

    def _source_messages(self) -> list[dict[str, Any]]:
        cites = list(getattr(self.result, "citations", []) or [])
        if not cites:
            return []
        pid = f"src-{self.uid}"
        out = [{"role": "assistant", "content": "Expand a source to read the quoted passage.",
                "metadata": {"title": f"Sources ({len(cites)})", "id": pid, "status": "done"}}]
        for i, c in enumerate(cites, start=1):
            num = getattr(c, "number", None) or i
            source = str(_first(c, "source", "path", "doc_id") or "?")
            passage = str(_first(c, "text", "quote", "passage") or "").strip()
            start, end = _first(c, "start"), _first(c, "end")
            where = f" (characters {start}–{end})" if start is not None and end is not None else ""
            quoted = "\n".join(f"> {line}" for line in passage.splitlines()) or "> (no passage text)"
            out.append({"role": "assistant", "content": f"`{source}`{where}\n\n{quoted}",
                        "metadata": {"title": f"[{num}] {Path(source).name}", "id": f"{pid}-{i}",
                                     "parent_id": pid, "status": "done"}})
        return out


def _first(obj: Any, *names: str) -> Any:
    for n in names:
        v = obj.get(n) if isinstance(obj, dict) else getattr(obj, n, None)
        if v is not None and v != "":
            return v
    return None


def _short(v: Any, n: int = 60) -> str:
    s = repr(v) if not isinstance(v, str) else f'"{v}"'
    return s if len(s) <= n else s[: n - 1] + "…"


def media_messages(step: Any, services: AppServices | None) -> list[dict[str, Any]]:
    """Images, generated pictures and device answers of one finished step, as chat messages."""
    value = step.value
    if _first(value, "device", "device_id") is not None and _first(value, "capability") is not None:
        return _device_messages(value, services)
    items = _first(value, "images", "hits", "paths", "results")
    if not items or not isinstance(items, (list, tuple)):
        return []
    generated = step.tool == "generate_image" or (_first(value, "prompt") is not None
                                                  and _first(value, "seed", "seeds") is not None)
    seeds = _first(value, "seeds") or []
    gallery, missing = [], []
    for i, item in enumerate(items):
        path = item if isinstance(item, (str, Path)) else _first(item, "path", "image", "file")
        if path is None:
            continue
        shown = services.servable(path) if services else None
        if shown is None and services and not isinstance(item, (str, Path)) and _first(item, "thumbnail"):
            shown = services.servable(_first(item, "thumbnail"))
        score = None if isinstance(item, (str, Path)) else _first(item, "score")
        caption = Path(str(path)).name + (f" · score {score:.3f}" if isinstance(score, (int, float)) else "") + f" · {path}"
        if generated and i < len(seeds):
            caption = f"{Path(str(path)).name} · seed {seeds[i]} · {path}"
        (gallery.append((shown, caption)) if shown else missing.append(caption))
    label = "Generated" if generated else "Photos"
    out: list[dict[str, Any]] = []
    if gallery:
        import gradio as gr

        out.append({"role": "assistant", "content": gr.Gallery(value=gallery, label=label, columns=min(4, len(gallery)),
                                                                 height="auto", object_fit="contain", allow_preview=True)})
    params = _generation_params(value) if generated else ""
    if params:
        out.append({"role": "assistant", "content": f"Generation parameters: {params}"})
    if missing:
        out.append({"role": "assistant", "content": f"{label} (files not readable here):\n" + "\n".join(f"- `{m}`" for m in missing)})
    return out


def _generation_params(value: Any) -> str:
    keys = ("prompt", "negative_prompt", "seed", "seeds", "steps", "guidance", "width", "height", "model", "seconds")
    parts = []
    params = _first(value, "params", "parameters")
    for k in keys:
        v = params.get(k) if isinstance(params, dict) and k in params else _first(value, k)
        if v not in (None, "", []):
            parts.append(f"{k}={v:.1f}" if k == "seconds" and isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def _device_messages(value: Any, services: AppServices | None) -> list[dict[str, Any]]:
    device = _first(value, "device", "device_id")
    name = _first(value, "device_name", "name") or device
    when = _first(value, "time_iso", "time", "timestamp") or "?"
    model = _first(value, "model") or "no model"
    cap = _first(value, "capability")
    data = _first(value, "data") or {}
    lines = [f"**Device answer** — {name} (`{device}`), {cap}, model `{model}`, at {when}"]
    ms = _first(value, "device_ms")
    if isinstance(ms, (int, float)):
        lines.append(f"{ms:.1f} ms on the device, {float(_first(value, 'round_trip_ms') or 0):.1f} ms round trip")
    out = [{"role": "assistant", "content": "\n\n".join(lines)}]
    frame = frame_for(value, data, services)
    if frame:
        out.append({"role": "assistant", "content": {"path": frame[0], "alt_text": frame[1]}})
        out.append({"role": "assistant", "content": f"_{frame[1]}_"})
    return out


def frame_for(value: Any, data: dict, services: AppServices | None) -> tuple[str, str] | None:
    """The camera frame behind a device answer: inline in a snapshot, else one fresh snapshot of the
    same source (cameras name the frame they classified)."""
    if services is None or not isinstance(data, dict):
        return None
    if data.get("image_b64"):
        path = services.save_b64_image(data["image_b64"])
        return (path, f"frame from {_first(value, 'device', 'device_id')}: {data.get('source', '')}") if path else None
    if _first(value, "capability") not in ("classify", "detect_faces") or not data.get("source"):
        return None
    try:
        client = services.fleet.client(connect=False)
        if client is None:
            return None
        reply = client.request(_first(value, "device", "device_id"), "snapshot", {}, timeout=3.0)
    except Exception:  # noqa: BLE001 - the frame is a nicety; the answer stands without it
        return None
    if reply.data.get("source") != data.get("source") or not reply.data.get("image_b64"):
        return None
    path = services.save_b64_image(reply.data["image_b64"])
    return (path, f"the frame {_first(value, 'device', 'device_id')} classified: {data['source']}") if path else None


def _pump(events: Iterator[Any], cancel: threading.Event, poll_s: float = 0.2) -> Iterator[Any]:
    """Yield `events` as they come, produced in a worker thread, and stop as soon as `cancel` is set
    even while the producer is busy (it notices the flag itself and winds down in the background)."""
    box: "queue.Queue[tuple[str, Any]]" = queue.Queue()

    def work() -> None:
        try:
            for ev in events:
                box.put(("event", ev))
                if cancel.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            box.put(("error", exc))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            box.put(("end", None))

    threading.Thread(target=work, name="app-chat-turn", daemon=True).start()
    while True:
        try:
            kind, item = box.get(timeout=poll_s)
        except queue.Empty:
            if cancel.is_set():
                return
            continue
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield item
        if cancel.is_set():
            return


def chat_turn(services: AppServices, tab: TabState, text: str, image: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Run one request in the tab's conversation; yield the whole chat after each event."""
    text = (text or "").strip()
    if not text and image:
        text = "Find photos similar to this image."
    if not text:
        yield list(tab.messages)
        return
    cancel = tab.new_cancel("chat")
    view = TurnView(text, None, services)
    history = list(tab.messages)
    try:
        if image:
            image = str(services.accept_upload(image, IMAGE_TYPES, "chat"))
            view.image = services.servable(image, max_side=320)
        yield history + view.messages()
        if tab.conversation is None:
            tab.conversation = services.agent.conversation()
        for event in _pump(tab.conversation.stream(text, image=image, cancel=cancel), cancel):
            view.apply(event)
            yield history + view.messages()
        if cancel.is_set():
            view.error = "Cancelled."
    except Cancelled:
        view.error = "Cancelled."
    except Exception as exc:  # noqa: BLE001 - a chat shows a short message, never a stack trace
        view.error = short_error(exc)
    tab.messages = history + view.messages()
    yield list(tab.messages)


# -- knowledge base ------------------------------------------------------------------------------

def _doc_types() -> tuple[str, ...]:
    from indexes.readers import READERS

    return tuple(READERS)


def ingest_documents(services: AppServices, files: list[str] | None, folder: str, cancel: threading.Event | None = None,
                     progress: Callable[[float, str], None] | None = None) -> Iterator[tuple[str, list[list[Any]]]]:
    """Yield (status line, per-file rows) as ingestion goes; the last yield is the summary."""
    from indexes.ingest import ingest_paths

    paths: list[str] = []
    rows: list[list[Any]] = []
    for f in files or []:
        try:
            paths.append(str(services.accept_upload(f, _doc_types(), "kb")))
        except InputError as exc:
            rows.append([Path(f).name, "skipped", 0, str(exc)])
    folder = (folder or "").strip()
    if folder:
        p = Path(folder).expanduser()
        if not p.is_dir():
            raise InputError(f"not a folder: {folder}")
        paths.append(str(p))
    if not paths:
        raise InputError("choose files to upload or name a folder")
    cancel = cancel or threading.Event()
    events: "queue.Queue[tuple]" = queue.Queue()

    def on_progress(done: int, total: int, path: str) -> None:
        events.put(("progress", done, total, path))
        if cancel.is_set():
            raise Cancelled("ingestion cancelled; the files already stored are kept")

    def work() -> None:
        try:
            with services.kb_lock:
                report = ingest_paths(services.config.kb_path(), paths, config=services.config,
                                      on_progress=on_progress, show_progress=False, batch_chunks=64)
            events.put(("done", report))
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread
            events.put(("error", exc))

    threading.Thread(target=work, name="app-ingest", daemon=True).start()
    yield f"Reading {len(paths)} path(s)…", rows
    while True:
        item = events.get()
        if item[0] == "progress":
            _, done, total, path = item
            # `done` stays 0 while ingest's tqdm bar is disabled (indexes/ingest.py counts with bar.n),
            # so say what is sure: how many files and which one was stored last.
            line = (f"Embedded {done}/{total} files" if done else f"Embedding {total} files") + \
                f" (last stored: {Path(path).name})"
            if progress is not None and total:
                progress(done / total, line)
            yield line, rows
        elif item[0] == "error":
            raise item[1]
        else:
            report = item[1]
            rows += [[f.path, f.status, f.chunks, f.reason] for f in report.files]
            yield report.summary(), rows
            return


def _open_kb(services: AppServices, read_only: bool = True):
    from indexes.text import TextIndex

    path = services.config.kb_path()
    if not (path / "manifest.json").exists():
        return None
    return TextIndex.open(path, read_only=read_only, embedder_backend=services.config.embedder.backend)


def list_documents(services: AppServices) -> list[list[Any]]:
    kb = _open_kb(services)
    if kb is None:
        return []
    with kb:
        return [[d.doc_id, d.type, d.chunks, d.chars, time.strftime("%Y-%m-%d %H:%M", time.localtime(d.added_at))]
                for d in kb.list_documents()]


def delete_documents(services: AppServices, ids: list[str]) -> int:
    if not ids:
        raise InputError("choose documents to delete")
    with services.kb_lock:
        kb = _open_kb(services, read_only=False)
        if kb is None:
            return 0
        with kb:
            n = kb.delete(list(ids))
    # An uploaded document lives only for the knowledge base: its copy goes with it.
    for doc_id in ids:
        p = Path(doc_id)
        if p.is_relative_to(services.uploads / "kb") and p.is_file():
            p.unlink()
    return n


# -- image library ---------------------------------------------------------------------------------

def _image_index(services: AppServices, create: bool = False):
    """The image library's index (indexes.images) for writing, or the shared reader; one-line
    reasons when it is unavailable. The reader is the image_search tool's own index when the agent
    has one, so the encoder loads once."""
    try:
        from indexes.images import ImageIndex
    except ModuleNotFoundError as exc:
        raise InputError(f"image search is not available in this install ({exc.name} is missing)") from None
    path = services.config.images_path()
    if create:
        reader = services._image_reader
        if reader is not None:
            return ImageIndex.open(path, reader.encoder, config=services.config.images)
        if (path / "manifest.json").exists():  # the encoder it was built with
            return ImageIndex.open(path, None, config=services.config.images)
        return ImageIndex.open(path, services.config.images.encoder, config=services.config.images)
    if not (path / "manifest.json").exists():
        raise InputError("the image library is empty: index a folder first")
    with services.images_lock:
        if services._image_reader is None:
            tool = getattr(services._agent, "tools", {}).get("image_search") if services._agent is not None else None
            reader = getattr(tool, "index", None) if tool is not None and hasattr(type(tool), "index") else None
            services._image_reader = reader or ImageIndex.open(path, None, config=services.config.images,
                                                                 read_only=True)
        return services._image_reader


def index_images(services: AppServices, folder: str, cancel: threading.Event | None = None,
                 progress: Callable[[float, str], None] | None = None) -> Iterator[tuple[str, list[list[Any]]]]:
    """Yield (status line, skipped-file rows) as a folder is indexed; the last yield is the summary."""
    folder = (folder or "").strip()
    p = Path(folder).expanduser()
    if not folder or not p.is_dir():
        raise InputError(f"not a folder: {folder or '(empty)'}")
    cancel = cancel or threading.Event()
    events: "queue.Queue[tuple]" = queue.Queue()

    def work() -> None:
        try:
            with services.images_lock:
                with _image_index(services, create=True) as index:  # the reader picks the writes up
                    report = index.index_folder(p, progress=lambda d, t: events.put(("progress", d, t)),
                                                cancel=cancel)
            events.put(("done", report))
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread
            events.put(("error", exc))

    threading.Thread(target=work, name="app-images", daemon=True).start()
    yield f"Indexing {p}…", []
    while True:
        item = events.get()
        if item[0] == "progress":
            line = f"Indexed {item[1]}/{item[2]} images"
            if progress is not None and item[2]:
                progress(item[1] / item[2], line)
            yield line, []
        elif item[0] == "error":
            raise item[1]
        else:
            report = item[1]
            yield report.summary(), [[s.path, "skipped", s.reason] for s in report.skipped]
            return


def search_images(services: AppServices, text: str, image: str | None, k: int = 8) -> tuple[list[tuple[str, str]], str]:
    """(gallery items, status line) for a text and/or example-image query."""
    text = (text or "").strip()
    if not text and not image:
        raise InputError("type what the photo shows or give an example image")
    if image:
        image = str(services.accept_upload(image, IMAGE_TYPES, "queries"))
    hits = _image_index(services).search(text, image=image, k=int(k))
    gallery = []
    for h in hits:
        path = _first(h, "path")
        shown = services.servable(path) or services.servable(_first(h, "thumbnail") or path)
        if shown:
            gallery.append((shown, f"{Path(path).name} · score {float(_first(h, 'score') or 0):.3f} · {path}"))
    encoder = _first(hits[0], "encoder") if hits else ""
    what = " and ".join(x for x in (f"'{text}'" if text else "", "the example image" if image else "") if x)
    return gallery, f"{len(gallery)} photo(s) for {what}" + (f" · encoder {encoder}" if encoder else "")


# -- devices -------------------------------------------------------------------------------------------

class FleetService:
    """The simulated fleet the app can start/stop (with a private broker when none listens on the
    configured port), and the MQTT client the devices tab and the edge_query tool share."""

    def __init__(self, config: Config, services: AppServices | None = None, n_devices: int = 3) -> None:
        self.config = config
        self.services = services
        self.n_devices = n_devices
        self.broker: Any = None
        self.fleet: Any = None
        self._client: Any = None
        self._lock = threading.RLock()

    @property
    def credentials_file(self) -> Path:
        return self.config.paths.data() / "edge" / "credentials.json"

    @property
    def running(self) -> bool:
        return self.fleet is not None

    def _edge_tool(self) -> Any:
        agent = getattr(self.services, "_agent", None) if self.services is not None else None
        return getattr(agent, "tools", {}).get("edge_query") if agent is not None else None

    def client(self, connect: bool = True) -> Any:
        """The shared client: the edge tool's own if it has one, else ours (connected on demand)."""
        with self._lock:
            tool = self._edge_tool()
            if tool is not None and getattr(tool, "client", None) is not None:
                return tool.client
            if self._client is None and connect:
                from tools.edge_query import connect_edge_client

                self._client = connect_edge_client(self.config.edge, self.credentials_file, timeout=5.0)
            if tool is not None and hasattr(tool, "client") and tool.client is None and self._client is not None:
                tool.client = self._client
            return self._client

    def start(self) -> str:
        import json
        import socket

        from edge.broker import MosquittoBroker
        from edge.errors import EdgeError
        from edge.fleet import SimulatedFleet, fleet_specs

        with self._lock:
            if self.fleet is not None:
                return "the simulated fleet is already running"
            cfg = self.config.edge
            specs = fleet_specs(self.n_devices)
            try:
                with socket.create_connection((cfg.host, cfg.port), timeout=0.5):
                    listening = True
            except OSError:
                listening = False
            try:
                if listening:
                    try:
                        passwords = json.loads(self.credentials_file.read_text()).get("users", {})
                    except (OSError, ValueError):
                        raise DeviceError(f"a broker runs on {cfg.host}:{cfg.port} but {self.credentials_file} "
                                          "has no device passwords: start it with 'polymodal edge broker'") from None
                else:
                    self.broker = MosquittoBroker(devices=[s.id for s in specs], orchestrators=(cfg.username,),
                                                  host=cfg.host, port=cfg.port, prefix=cfg.topic_prefix).start()
                    self.broker.write_credentials(self.credentials_file)
                    passwords = self.broker.passwords
                self.fleet = SimulatedFleet(specs, cfg.host, cfg.port, passwords, prefix=cfg.topic_prefix,
                                            tls_ca=cfg.tls_ca).start()
                client = self.client()
                client.registry.wait_for(lambda r: all((d := r.get(s.id)) is not None and d.online for s in specs), 10.0)
            except EdgeError as exc:
                self.stop()
                raise DeviceError(str(exc)) from None
            except BaseException:
                self.stop()
                raise
            where = f"{cfg.host}:{cfg.port}" + (" (broker started by the app)" if self.broker else "")
            return f"{len(specs)} simulated devices started via {where}"

    def stop(self) -> str:
        with self._lock:
            fleet, self.fleet = self.fleet, None
            if fleet is not None:
                fleet.stop()
            if self.broker is not None:
                # Clients of the broker we started die with it (a restarted broker has new passwords):
                # ours, and the edge tool's if it connected there; the tool reconnects on its next use.
                cfg = self.config.edge
                tool = self._edge_tool()
                tool_client = getattr(tool, "client", None)
                where = getattr(getattr(tool_client, "settings", None), "port", None), \
                    getattr(getattr(tool_client, "settings", None), "host", None)
                if tool_client is not None and (tool_client is self._client or where == (cfg.port, cfg.host)):
                    if tool_client is not self._client:
                        tool_client.close()
                    tool.client = None
                    tool._is_setup = False  # Tool.ensure_setup() connects again
                if self._client is not None:
                    self._client.close()
                    self._client = None
                self.broker.stop()
                self.broker = None
            return "the simulated fleet is stopped" if fleet is not None else "no simulated fleet was running"

    def readings(self, device: str, sensor: str, n: int = 30) -> dict[str, Any]:
        client = self.client()
        return client.request(device, "readings", {"sensor": sensor, "n": n}, timeout=3.0).data


def _ago(ts: float) -> str:
    if not ts:
        return "never"
    s = max(0, int(time.time() - ts))
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


def device_rows(services: AppServices) -> tuple[list[list[Any]], str]:
    """(rows: id, name, state, last seen, capabilities, location; status line)."""
    try:
        client = services.fleet.client()
    except PolymodalError as exc:
        return [], f"No broker reachable: {exc}. Start the simulated fleet or your broker."
    devices = client.devices() if client is not None else []
    rows = [[d.id, d.name, "● online" if d.online else "○ offline", _ago(d.last_seen),
             ", ".join(sorted(d.capabilities)), d.location] for d in devices]
    online = sum(1 for d in devices if d.online)
    return rows, f"{online} of {len(devices)} device(s) online" if devices else "no devices registered"


def sensor_frame(services: AppServices, n: int = 30):
    """A long-format DataFrame (seconds before now, value, series) of the latest readings of every
    sensor device (relative seconds: device clocks and the browser's time zone need not agree)."""
    import pandas as pd

    frames = []
    # Typed even when empty: the plot fixes its encodings from the first frame it is given.
    empty = pd.DataFrame({"seconds": pd.Series(dtype=float), "value": pd.Series(dtype=float),
                          "series": pd.Series(dtype=str)})
    client = services.fleet.client(connect=False)
    if client is None:
        return empty
    for d in client.devices():
        if not d.online or "readings" not in d.capabilities:
            continue
        for sensor in d.capabilities["readings"].get("sensors", [])[:4]:
            try:
                data = services.fleet.readings(d.id, sensor, n)
            except PolymodalError:
                continue
            except Exception as exc:  # noqa: BLE001 - one device's failure must not blank the plot
                log.info("readings from %s failed: %s", d.id, exc)
                continue
            vals = data.get("values", [])
            times = data.get("timestamps", [])
            now = time.time()
            frames.append(pd.DataFrame({"seconds": [round(t - now, 1) for t in times[: len(vals)]], "value": vals,
                                        "series": f"{d.id}/{sensor} ({data.get('unit', '')})"}))
    if not frames:
        return empty
    out = pd.concat(frames, ignore_index=True)
    # A dropout reading is None: coerce, or the column is 'object' and the plot draws no line.
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype(float)
    return out.dropna()


# -- settings --------------------------------------------------------------------------------------------

def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_report(services: AppServices) -> str:
    """Markdown: models per role, active encoder, tools and what is missing, memory in use."""
    from orchestrator.cli.doctor import diagnose

    cfg = services.config
    out = ["### Models", "| role | configured | present | detail |", "|---|---|---|---|"]
    checks = diagnose(cfg)
    for c in checks:
        if c.kind == "model":
            out.append(f"| {c.name} | {_md(c.detail.split(':')[0])} | {'✓' if c.ok else '✗'} | {_md(c.detail)} |")
    out += ["", f"LLM backend `{cfg.llm.backend}` · image encoder setting `{cfg.images.encoder}` · "
                f"knowledge base `{cfg.kb_path()}` · image library `{cfg.images_path()}`"]
    agent = services._agent
    if agent is not None:
        out += ["", "### Tools", ", ".join(f"`{n}`" for n in agent.tools) or "(none)"]
        for p in getattr(agent, "problems", []):
            out.append(f"- `{p.tool}` unavailable: {_md(p.reason)}")
    missing = [c for c in checks if not c.ok]
    out += ["", "### Doctor: what is missing"]
    out += [f"- **{c.name}** ({c.kind}): {_md(c.detail)}" + (f" — disables {_md(c.disables)}" if c.disables else "")
            for c in missing] or ["Nothing: every model, extra and service is present."]
    out += ["", "### Memory", f"Process resident memory: {_rss_mb():.0f} MB", ""]
    models = getattr(agent, "models", None) if agent is not None else None
    if models is not None:
        loaded = models.loaded()
        out.append("Models loaded: " + (", ".join(f"`{k}` ({mb:.0f} MB)" for k, mb in loaded) or "none yet")
                   + f" · budget use {models.used_mb:.0f} of {getattr(models, 'budget_mb', 0):.0f} MB")
    return "\n".join(out)


def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


# -- the page ---------------------------------------------------------------------------------------------

CSS = """
.pm-status {min-height: 1.5em}
footer {display: none !important}
"""


def _files_of(message: Any) -> list[str]:
    files = (message or {}).get("files") or [] if isinstance(message, dict) else []
    return [f if isinstance(f, str) else f.get("path", "") for f in files if f]


def build_app(config: Config | None = None, agent: Any = None, services: AppServices | None = None):
    """The Blocks of the whole page. Nothing loads here: the Agent is built on the first message
    (unless one is given), the fleet starts from its button."""
    config = config if config is not None else load_config()
    services = services or AppServices(config, agent)
    # Uploads land in gradio's temp folder: point it inside the app's data folder (read by each
    # component as it is built, so this must come first).
    os.environ["GRADIO_TEMP_DIR"] = str(services.cache)
    import gradio as gr

    # delete_cache: gradio's copies of uploads and our thumbnails go after a day (they are rebuilt on demand)
    with gr.Blocks(title="polymodal", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        demo.services = services  # type: ignore[attr-defined]
        tab = gr.State(TabState())
        gr.Markdown("## polymodal — documents, photos, generation and devices, from one chat")
        with gr.Tabs():
            _chat_tab(gr, services, tab)
            _kb_tab(gr, services, tab)
            _images_tab(gr, services, tab)
            _devices_tab(gr, services)
            _settings_tab(gr, services)
    return demo


def _chat_tab(gr: Any, services: AppServices, tab: Any) -> None:
    with gr.Tab("Chat", id="chat"):
        chatbot = gr.Chatbot(label="Conversation", height=560, elem_id="chat", buttons=["copy"],
                             placeholder="Ask about your documents, find or generate a picture, or ask a device.")
        with gr.Row():
            box = gr.MultimodalTextbox(placeholder="Type a message; attach or paste an image…", file_count="single",
                                       file_types=list(IMAGE_TYPES), sources=["upload"], show_label=False,
                                       scale=8, elem_id="chat-input")
            stop = gr.Button("Stop", variant="stop", scale=1, min_width=80, elem_id="chat-stop")
            new = gr.Button("New chat", scale=1, min_width=80, elem_id="chat-new")
        with gr.Accordion("Camera or pasted image", open=False):
            camera = gr.Image(sources=["webcam", "clipboard", "upload"], type="filepath", height=220,
                              label="Sent with the next message")

        def respond(state: TabState, message: dict, cam: str | None):
            files = _files_of(message)
            image = files[0] if files else cam
            msgs = list(state.messages)
            for msgs in chat_turn(services, state, (message or {}).get("text", ""), image):
                yield state, msgs, gr.MultimodalTextbox(value=None, interactive=False), gr.update()
            yield state, msgs, gr.MultimodalTextbox(value=None, interactive=True), None

        box.submit(respond, [tab, box, camera], [tab, chatbot, box, camera],
                         concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat", show_progress="hidden")

        def on_stop(state: TabState):
            state.cancel("chat")
            return state, gr.MultimodalTextbox(interactive=True)

        # No `cancels=`: killing the event would leave the chat half-drawn with an error badge; the
        # flag makes the turn end itself with a "Cancelled." line at once (see _pump).
        stop.click(on_stop, [tab], [tab, box], queue=False)

        def on_new(state: TabState):
            state.cancel("chat")
            fresh = TabState(cancels=state.cancels)
            return fresh, []

        new.click(on_new, [tab], [tab, chatbot], queue=False)
        chatbot.clear(on_new, [tab], [tab, chatbot], queue=False)  # the bin icon starts a new conversation too


def _kb_tab(gr: Any, services: AppServices, tab: Any) -> None:
    with gr.Tab("Knowledge base", id="kb") as kb_tab:
        with gr.Row():
            files = gr.File(file_count="multiple", file_types=list(_doc_types()), label="Upload documents", height=140,
                            elem_id="kb-files")
            with gr.Column():
                folder = gr.Textbox(label="…or a folder on this machine", placeholder="/path/to/docs")
                with gr.Row():
                    go = gr.Button("Ingest", variant="primary", elem_id="kb-ingest")
                    cancel = gr.Button("Cancel", elem_id="kb-cancel")
        status = gr.Markdown(elem_classes="pm-status", elem_id="kb-status")
        report = gr.Dataframe(headers=["file", "status", "chunks", "reason"], label="Per-file summary",
                              interactive=False, wrap=True)
        gr.Markdown("### Documents")
        docs = gr.Dataframe(headers=["document", "type", "chunks", "chars", "added"], interactive=False,
                            wrap=True, elem_id="kb-docs")
        with gr.Row():
            pick = gr.Dropdown(label="Select documents to delete", multiselect=True, choices=[], scale=4)
            delete = gr.Button("Delete selected", variant="stop", scale=1)
            refresh = gr.Button("Refresh", scale=1)

        def docs_out(note: str = ""):
            try:
                rows = list_documents(services)
            except Exception as exc:  # noqa: BLE001
                return [], gr.Dropdown(choices=[], value=[]), f"⚠ {short_error(exc)}"
            return rows, gr.Dropdown(choices=[r[0] for r in rows], value=[]), note

        def run(state: TabState, uploaded: list[str] | None, path: str, bar=gr.Progress()):
            cancel_ev = state.new_cancel("kb")
            rows: list = []
            try:
                for line, rows in ingest_documents(services, uploaded, path, cancel_ev, lambda f, m: bar(f, desc=m)):
                    yield state, f"… {line}", rows, gr.update(), gr.update()
                d, p, _ = docs_out()
                yield state, f"✓ {line}", rows, d, p
            except Exception as exc:  # noqa: BLE001 - a short message, never a trace
                d, p, _ = docs_out()
                yield state, f"⚠ {short_error(exc)}", rows, d, p

        evt = go.click(run, [tab, files, folder], [tab, status, report, docs, pick],
                       concurrency_limit=1, concurrency_id="kb-write")
        cancel.click(lambda s: (s.cancel("kb"), s)[1], [tab], [tab], queue=False)

        def remove(ids: list[str]):
            try:
                n = delete_documents(services, ids)
                d, p, _ = docs_out()
                return f"Deleted {n} document(s).", d, p
            except Exception as exc:  # noqa: BLE001
                d, p, _ = docs_out()
                return f"⚠ {short_error(exc)}", d, p

        delete.click(remove, [pick], [status, docs, pick], concurrency_id="kb-write")
        refresh.click(lambda: docs_out()[:2], None, [docs, pick])
        kb_tab.select(lambda: docs_out()[:2], None, [docs, pick])


def _images_tab(gr: Any, services: AppServices, tab: Any) -> None:
    with gr.Tab("Image library", id="images"):
        with gr.Row():
            folder = gr.Textbox(label="Index a folder of photos", placeholder="/path/to/photos", scale=4,
                                elem_id="img-folder")
            go = gr.Button("Index", variant="primary", scale=1, elem_id="img-index")
            cancel = gr.Button("Cancel", scale=1)
        status = gr.Markdown(elem_classes="pm-status", elem_id="img-status")
        with gr.Accordion("Per-file summary", open=False):
            report = gr.Dataframe(headers=["file", "status", "reason"], interactive=False, wrap=True)
        gr.Markdown("### Search")
        with gr.Row():
            with gr.Column(scale=3):
                query = gr.Textbox(label="What the photo shows", placeholder="a cat sleeping / 一只猫", elem_id="img-query")
                k = gr.Slider(1, 24, value=8, step=1, label="How many")
                search = gr.Button("Search", variant="primary", elem_id="img-search")
            example = gr.Image(label="…or search by an example image", type="filepath", scale=2, height=200,
                               sources=["upload", "clipboard", "webcam"], elem_id="img-example")
        found = gr.Markdown(elem_classes="pm-status", elem_id="img-found")
        gallery = gr.Gallery(label="Results", columns=4, height="auto", object_fit="contain", elem_id="img-gallery")

        def run(state: TabState, path: str, bar=gr.Progress()):
            cancel_ev = state.new_cancel("images")
            rows: list = []
            try:
                for line, rows in index_images(services, path, cancel_ev, lambda f, m: bar(f, desc=m)):
                    yield state, f"… {line}", rows
                yield state, f"✓ {line}", rows
            except Exception as exc:  # noqa: BLE001
                yield state, f"⚠ {short_error(exc)}", rows

        go.click(run, [tab, folder], [tab, status, report], concurrency_limit=1, concurrency_id="images-write")
        cancel.click(lambda s: (s.cancel("images"), s)[1], [tab], [tab], queue=False)

        def find(text: str, image: str | None, n: float):
            try:
                items, line = search_images(services, text, image, int(n))
                return items, line
            except Exception as exc:  # noqa: BLE001
                return [], f"⚠ {short_error(exc)}"

        search.click(find, [query, example, k], [gallery, found], concurrency_limit=2, concurrency_id="images-read")
        query.submit(find, [query, example, k], [gallery, found], concurrency_limit=2, concurrency_id="images-read")


def _devices_tab(gr: Any, services: AppServices) -> None:
    with gr.Tab("Devices", id="devices") as dev_tab:
        with gr.Row():
            start = gr.Button("Start simulated fleet", variant="primary", elem_id="fleet-start")
            stop = gr.Button("Stop simulated fleet", variant="stop", elem_id="fleet-stop")
            refresh = gr.Button("Refresh", elem_id="dev-refresh")
            live = gr.Checkbox(label="Live (every 3 s)", value=False)
        status = gr.Markdown(elem_classes="pm-status", elem_id="dev-status")
        table = gr.Dataframe(headers=["device", "name", "state", "last seen", "capabilities", "location"],
                             interactive=False, wrap=True, elem_id="dev-table")
        plot = gr.LinePlot(x="seconds", y="value", color="series", title="Latest sensor readings", height=260,
                           x_title="seconds before now", y_title="value", elem_id="dev-plot")
        timer = gr.Timer(3.0, active=False)

        def snapshot(note: str = ""):
            try:
                rows, line = device_rows(services)
                frame = sensor_frame(services)
            except Exception as exc:  # noqa: BLE001
                return f"⚠ {short_error(exc)}", [], gr.update()
            # An empty frame would fix the plot's colour scale to no series (no lines ever after): clear it.
            return (f"{note} · {line}" if note else line), rows, (frame if len(frame) else None)

        def do(action: Callable[[], str]):
            try:
                note = action()
            except Exception as exc:  # noqa: BLE001
                return f"⚠ {short_error(exc)}", gr.update(), gr.update()
            return snapshot(note)

        start.click(lambda: do(services.fleet.start), None, [status, table, plot], concurrency_id="fleet",
                    concurrency_limit=1)
        stop.click(lambda: do(services.fleet.stop), None, [status, table, plot], concurrency_id="fleet",
                   concurrency_limit=1)
        refresh.click(snapshot, None, [status, table, plot])
        dev_tab.select(snapshot, None, [status, table, plot])
        live.change(lambda on: gr.Timer(active=bool(on)), [live], [timer])
        timer.tick(snapshot, None, [status, table, plot], show_progress="hidden")


def _settings_tab(gr: Any, services: AppServices) -> None:
    with gr.Tab("Settings", id="settings") as tab:
        refresh = gr.Button("Refresh", size="sm")
        report = gr.Markdown(elem_id="settings-report")

        def show():
            try:
                return settings_report(services)
            except Exception as exc:  # noqa: BLE001
                return f"⚠ {short_error(exc)}"

        tab.select(show, None, [report])
        refresh.click(show, None, [report])


def serve(demo: Any, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
          share: bool = False, block: bool = True, quiet: bool = False) -> str:
    """Queue and launch `demo`; returns the local URL (with `block=False` the server runs in a thread)."""
    services: AppServices = demo.services
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, auth=auth, share=share, prevent_thread_lock=not block,
                max_file_size=f"{services.config.app.max_upload_mb}mb", allowed_paths=[str(services.cache)],
                show_error=False, quiet=quiet, inbrowser=False, css=CSS, footer_links=[])
    return demo.local_url


def launch(config: Config | None = None, host: str | None = None, port: int | None = None,
           auth: tuple[str, str] | None = None, share: bool = False, block: bool = True) -> Any:
    config = config if config is not None else load_config()
    demo = build_app(config)
    serve(demo, host or config.app.host, port or config.app.port, auth=auth, share=share, block=False)
    warm_up(demo.services)
    if block:
        demo.block_thread()
    return demo


def warm_up(services: AppServices) -> threading.Thread:
    """Build the Agent and load the router's embedder and the LLM in the background, so the first
    message does not pay for them (the page is already served meanwhile)."""
    def work() -> None:
        try:
            agent = services.agent
            if callable(getattr(agent, "warm_up", None)):
                agent.warm_up()
        except Exception as exc:  # noqa: BLE001 - the first message will report the problem
            log.warning("warm-up failed: %s", short_error(exc))

    t = threading.Thread(target=work, name="app-warm-up", daemon=True)
    t.start()
    return t


if __name__ == "__main__":  # pragma: no cover
    launch()
