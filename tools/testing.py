"""Deterministic fakes of the four tools, for tests, demos and the routing eval.

Each fake subclasses the real tool, so the router and planner see exactly what the real one
declares (name, description, examples, cues, plan examples, follow-ups); only the work is fake,
needing no model, index or device, so an `Agent` over them runs in milliseconds
(`orchestrator.testing.fake_agent`).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from polymodal.errors import Cancelled, DeviceOffline, ModelUnavailable
from tools.base import Tool, ToolContext, ToolResult
from tools.edge_query import Capability, EdgeQueryTool
from tools.generate import GenerateImageTool
from tools.image_search import ImageSearchTool
from tools.rag import RagAnswerTool

__all__ = [
    "FakeRagTool",
    "FakeImageSearchTool",
    "FakeGenerateTool",
    "FakeEdgeQueryTool",
    "BrokenGenerateTool",
    "SlowFakeTool",
    "SlowCall",
    "fake_tools",
    "FakeCitation",
    "FakeRagResult",
    "FakeImageHit",
    "FakeImageResult",
    "FakeGenerateResult",
    "FakeReading",
]


@dataclass
class FakeCitation:
    number: int
    source: str
    chunk_id: int
    start: int
    end: int
    text: str
    metadata: dict = field(default_factory=dict)  # the location: page, slide, sheet/row, heading


@dataclass
class FakeRagResult(ToolResult):
    question: str
    answer: str
    citations: list[FakeCitation] = field(default_factory=list)

    def summary(self) -> str:
        return self.answer


class _Fake:
    """What every fake changes: built from nothing, nothing to load or warm, no run limits."""

    max_concurrency = None

    def __init__(self) -> None:
        Tool.__init__(self)

    @classmethod
    def from_config(cls, config: Any = None, models: Any = None) -> Any:
        return cls()

    def setup(self) -> None:
        pass

    def warm_up(self) -> None:
        pass


class FakeRagTool(_Fake, RagAnswerTool):
    def stream(self, question: str, k: int = 4, *, context: ToolContext | None = None) -> Any:
        yield self.run(question, k)

    def run(self, question: str, k: int = 4) -> FakeRagResult:
        """Args:
        question: the question to answer from the knowledge base
        k: how many passages to retrieve
        """
        cite = FakeCitation(
            1, "kb/edge-ai.md", 7, 120, 220, f"A passage about {question[:40]}", {"heading": "Edge AI > Deployment"}
        )
        return FakeRagResult(question, f"Answer about {question} [1]", [cite])


@dataclass
class FakeImageHit:
    path: str
    score: float
    encoder: str = "fake"


@dataclass
class FakeImageResult(ToolResult):
    query: str
    images: list[FakeImageHit] = field(default_factory=list)

    @property
    def artifacts(self) -> list[str]:
        return [h.path for h in self.images]

    def summary(self) -> str:
        return f"Found {len(self.images)} photo(s) for '{self.query}': " + ", ".join(h.path for h in self.images)


class FakeImageSearchTool(_Fake, ImageSearchTool):
    index = None  # no image library behind the fake

    def run(self, query: str = "", image: str = "", k: int = 3) -> FakeImageResult:
        """Args:
        query: what the photo shows
        image: path of an example image to find similar photos
        k: how many photos
        """
        slug = re.sub(r"\W+", "-", (query or image).lower()).strip("-")[:30] or "image"
        return FakeImageResult(
            query or image, [FakeImageHit(f"/photos/{slug}-{i}.jpg", 0.9 - i / 10) for i in range(k)]
        )


@dataclass
class FakeGenerateResult(ToolResult):
    prompt: str
    seed: int
    images: list[str] = field(default_factory=list)
    model: str = "fake-diffusion"

    @property
    def artifacts(self) -> list[str]:
        return list(self.images)

    def summary(self) -> str:
        return f"Generated {len(self.images)} image(s) for '{self.prompt}' (seed {self.seed}): {', '.join(self.images)}"


class FakeGenerateTool(_Fake, GenerateImageTool):
    def __init__(self, steps: int = 3, step_seconds: float = 0.0) -> None:
        super().__init__()
        self.steps = steps
        self.step_seconds = step_seconds

    def run(self, prompt: str, seed: int = 0, *, context: ToolContext | None = None) -> FakeGenerateResult:
        """Args:
        prompt: what the image should show
        seed: random seed; the same seed gives the same image
        """
        context = context or ToolContext()
        for i in range(self.steps):
            context.check_cancelled()
            if self.step_seconds:
                time.sleep(self.step_seconds)
            context.progress((i + 1) / self.steps, f"step {i + 1}/{self.steps}")
        slug = re.sub(r"\W+", "-", prompt.lower()).strip("-")[:30] or "image"
        return FakeGenerateResult(prompt, seed, [f"/generated/{slug}-{seed}.png"])


@dataclass
class FakeReading(ToolResult):
    device_id: str
    capability: str
    model: str
    time: str
    data: dict[str, Any]

    def summary(self) -> str:
        return f"{self.device_id} ({self.capability}, {self.model}) at {self.time}: {self.data}"

    def provenance(self) -> dict[str, str]:
        return {"device": self.device_id, "model": self.model, "time": self.time}


def announcement(id: str, name: str, kind: str, aliases: tuple[str, ...] = (), sensors: tuple[str, ...] = ()) -> dict:
    """What a device of `kind` announces: cameras and door units see, sensor nodes measure."""
    if sensors or kind in ("sensor", "thermometer", "probe"):
        caps = {
            c: {"model": "fake-tflite", "sensors": list(sensors or ("temperature",))}
            for c in ("sensor_status", "readings")
        }
    else:
        caps = {c: {"model": "fake-tflite"} for c in ("classify", "detect_faces", "snapshot")}
    return {"id": id, "name": name, "kind": kind, "aliases": list(aliases), "capabilities": caps, "ts": 1.0}


# The demo fleet as `polymodal edge simulate` announces it (ids, names, aliases, capabilities).
DEMO_FLEET = (
    announcement("garden-camera", "garden camera", "camera", ("garden", "backyard camera", "花园摄像头", "花园")),
    announcement(
        "greenhouse",
        "greenhouse sensor node",
        "sensor",
        ("greenhouse sensors", "greenhouse temperature sensor", "温室传感器", "温室"),
        ("temperature", "humidity", "soil_moisture"),
    ),
    announcement("door", "front door unit", "door", ("doorbell", "front door camera", "门口", "前门")),
)


class FakeEdgeQueryTool(_Fake, EdgeQueryTool):
    """The edge tool over an in-memory registry of announced devices (default: the demo fleet):
    routing and device lookup are the real tool's; the answer is made up."""

    def __init__(self, offline: tuple[str, ...] = (), devices: tuple[dict, ...] = DEMO_FLEET) -> None:
        from edge.registry import DeviceRegistry

        registry = DeviceRegistry()
        for msg in devices:
            registry.on_announce(msg["id"], msg)
            registry.on_status(msg["id"], {"state": "online"})
        EdgeQueryTool.__init__(self, client=SimpleNamespace(registry=registry))
        self.offline = set(offline)

    def run(self, device: str, capability: Capability, parameters: dict | None = None) -> FakeReading:
        """Args:
        device: the device's id, name or alias
        capability: what to compute on the device
        parameters: extra parameters for the capability
        """
        from edge.errors import UnknownDevice

        try:
            info = self.client.registry.resolve(device)
        except UnknownDevice as exc:
            raise DeviceOffline(str(exc)) from None
        if info.id in self.offline:
            raise DeviceOffline(f"device '{info.id}' is offline")
        data = (
            {"labels": ["tabby cat"]}
            if "classify" in info.capabilities
            else {"status": "normal", "temperature_c": 21.5}
        )
        return FakeReading(info.id, capability, "fake-tflite", "2026-01-01T12:00:00Z", data)


class BrokenGenerateTool(FakeGenerateTool):
    """A generate tool with no weights: fails with the one-line message a real one gives."""

    def run(self, prompt: str, seed: int = 0, *, context: ToolContext | None = None) -> FakeGenerateResult:
        raise ModelUnavailable("no diffusion weights configured: set [diffusion] model to a local folder")


@dataclass
class SlowCall:
    """One run of `SlowFakeTool`: when it started and ended, units done, whether it saw the cancel."""

    units: int
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    units_done: int = 0
    saw_cancel: bool = False


@dataclass
class SlowResult(ToolResult):
    units_done: int

    def summary(self) -> str:
        return f"did {self.units_done} unit(s)"


class SlowFakeTool(Tool):
    """Long work in units, one run at a time (`max_concurrency = 1`), checking the cancel token
    between units. A unit lasts `unit_s` or until `gate` is set, so a test decides when the unit in
    progress ends; `calls` records each run (executor timeout and slot tests)."""

    name = "slow_work"
    description = "Do some slow work in units (a test tool)."
    max_concurrency = 1

    def __init__(self, unit_s: float = 0.01) -> None:
        super().__init__()
        self.unit_s = unit_s
        self.gate = threading.Event()
        self.calls: list[SlowCall] = []

    def run(self, units: int = 3, *, context: ToolContext | None = None) -> SlowResult:
        """Args:
        units: how many units of work to do
        """
        context = context or ToolContext()
        call = SlowCall(units)
        self.calls.append(call)
        call.started.set()
        try:
            for _ in range(units):
                try:
                    context.check_cancelled()
                except Cancelled:
                    call.saw_cancel = True
                    raise
                self.gate.wait(self.unit_s)
                call.units_done += 1
            return SlowResult(call.units_done)
        finally:
            call.finished.set()


def fake_tools() -> list[Tool]:
    return [FakeRagTool(), FakeImageSearchTool(), FakeGenerateTool(), FakeEdgeQueryTool()]
