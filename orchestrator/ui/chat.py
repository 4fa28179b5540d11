"""The chat turn: stream agent events into chat messages with citations, the plan and media.

Plain functions (no gradio at import), so they are tested without a browser.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from indexes.readers.base import describe_location
from orchestrator.ui.services import IMAGE_TYPES, AppServices, TabState, short_error
from polymodal.errors import Cancelled

log = logging.getLogger("polymodal.app")


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
        meta: dict[str, Any] = {
            "title": f"Plan: {tools}",
            "id": f"plan-{self.uid}",
            "status": "done" if self.finished else "pending",
        }
        if self.finished:
            total = self.result.timings.get("total") if self.result is not None else None
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
        out = [
            {
                "role": "assistant",
                "content": "Expand a source to read the quoted passage.",
                "metadata": {"title": f"Sources ({len(cites)})", "id": pid, "status": "done"},
            }
        ]
        for i, c in enumerate(cites, start=1):
            num = getattr(c, "number", None) or i
            source = str(_first(c, "source", "path", "doc_id") or "?")
            passage = str(_first(c, "text", "quote", "passage") or "").strip()
            start, end = _first(c, "start"), _first(c, "end")
            loc = describe_location(_first(c, "metadata") or {})
            where = f" (characters {start}–{end})" if start is not None and end is not None else ""
            where = f" {loc}{where}" if loc else where
            quoted = "\n".join(f"> {line}" for line in passage.splitlines()) or "> (no passage text)"
            out.append(
                {
                    "role": "assistant",
                    "content": f"`{source}`{where}\n\n{quoted}",
                    "metadata": {
                        "title": f"[{num}] {Path(source).name}" + (f" {loc}" if loc else ""),
                        "id": f"{pid}-{i}",
                        "parent_id": pid,
                        "status": "done",
                    },
                }
            )
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
    generated = _first(value, "prompt") is not None and _first(value, "seed", "seeds") is not None
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
        scored = f" · score {score:.3f}" if isinstance(score, (int, float)) else ""
        caption = f"{Path(str(path)).name}{scored} · {path}"
        if generated and i < len(seeds):
            caption = f"{Path(str(path)).name} · seed {seeds[i]} · {path}"
        (gallery.append((shown, caption)) if shown else missing.append(caption))
    label = "Generated" if generated else "Photos"
    out: list[dict[str, Any]] = []
    if gallery:
        import gradio as gr

        widget = gr.Gallery(
            value=gallery,
            label=label,
            columns=min(4, len(gallery)),
            height="auto",
            object_fit="contain",
            allow_preview=True,
        )
        out.append({"role": "assistant", "content": widget})
    params = _generation_params(value) if generated else ""
    if params:
        out.append({"role": "assistant", "content": f"Generation parameters: {params}"})
    if missing:
        listed = "\n".join(f"- `{m}`" for m in missing)
        out.append({"role": "assistant", "content": f"{label} (files not readable here):\n{listed}"})
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


def chat_turn(
    services: AppServices, tab: TabState, text: str, image: str | None = None
) -> Iterator[list[dict[str, Any]]]:
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
            image = str(services.accept_upload(image, IMAGE_TYPES, "chat", by_content=True))
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
