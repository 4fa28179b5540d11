"""edge_query: ask a registered edge device to compute something now, on the device.

The tool talks to devices through an injected `edge.client.MqttDeviceClient` (tests pass one
connected to their own broker and simulated fleet) or builds one from `EdgeConfig` on first use.
Offline and timed-out devices give a result that says so (status "offline"/"timeout"), not an
exception; `EdgeQueryResult.raise_for_status()` maps them onto `polymodal.errors` for the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from polymodal.cancel import check_cancelled
from polymodal.config import EdgeConfig
from polymodal.errors import DeviceError, DeviceOffline, DeviceTimeout, PolymodalError
from tools.base import Cues, Tool, ToolResult
from tools.edge_cues import PLAN_EXAMPLES, capability_for, device_cues, planning_note

__all__ = ["EdgeQueryTool", "EdgeQueryResult", "connect_edge_client", "map_edge_errors", "CAPABILITIES"]

Capability = Literal["classify", "detect_faces", "sensor_status", "snapshot", "readings"]
CAPABILITIES: tuple[str, ...] = ("classify", "detect_faces", "sensor_status", "snapshot", "readings")


_BROKER_HINT = " (start one with 'polymodal edge simulate' or 'polymodal edge broker')"


@contextlib.contextmanager
def map_edge_errors(hint: str = "") -> Iterator[None]:
    """Errors of the `edge` package, raised inside the block, as `polymodal.errors` (one line each):
    the one place they are translated, so an `EdgeError` never reaches a user as a stack trace.

        EdgeError
        ├── BrokerUnavailable   -> DeviceError (+ `hint`, e.g. how to start a broker)
        ├── UnknownDevice       -> DeviceError
        ├── DeviceOfflineError  -> DeviceOffline
        ├── DeviceTimeoutError  -> DeviceTimeout
        ├── DeviceReplyError    -> DeviceError "message (code)"
        └── any other           -> DeviceError
    """
    from edge import errors as e

    try:
        yield
    except e.EdgeError as exc:
        if isinstance(exc, e.DeviceOfflineError):
            raise DeviceOffline(str(exc)) from None
        if isinstance(exc, e.DeviceTimeoutError):
            raise DeviceTimeout(str(exc)) from None
        if isinstance(exc, (e.DeviceReplyError, e.RequestError)):
            raise DeviceError(f"{exc} ({exc.code})") from None
        if isinstance(exc, e.BrokerUnavailable):
            raise DeviceError(f"{exc}{hint}") from None
        raise DeviceError(str(exc)) from None


@dataclass
class EdgeQueryResult(ToolResult):
    """One fresh answer from a device, with where and when it was computed."""

    status: str  # "ok" | "offline" | "timeout" | "error"
    device: str  # device id
    device_name: str
    capability: str
    model: str = ""
    timestamp: float = 0.0  # device clock (epoch s) when the answer was computed
    inference_ms: float = 0.0  # model invoke time on the device
    device_ms: float = 0.0  # whole on-device handling time
    round_trip_ms: float = 0.0  # orchestrator -> device -> orchestrator
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def time_iso(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.timestamp)) if self.timestamp else ""

    def provenance(self) -> dict[str, str]:
        return {"device": self.device, "model": self.model, "time": self.time_iso}

    def raise_for_status(self) -> "EdgeQueryResult":
        if self.status == "offline":
            raise DeviceOffline(self.error)
        if self.status == "timeout":
            raise DeviceTimeout(self.error)
        if self.status != "ok":
            raise DeviceError(self.error)
        return self

    def summary(self) -> str:
        """One line for a final answer."""
        who = self.device_name or self.device
        if not self.ok:
            return f"{who}: no fresh answer ({self.error})"
        d = self.data
        prov = (
            f"[{self.device}, {self.model or 'no model'}, {self.time_iso}, {self.device_ms:.1f} ms on device, "
            f"{self.round_trip_ms:.1f} ms round trip]"
        )
        if self.capability == "classify":
            labels = ", ".join(f"{x['label']} ({x['score']:.0%})" for x in d.get("labels", []))
            return f"{who} sees: {labels} {prov}"
        if self.capability == "detect_faces":
            n = d.get("count", 0)
            scores = ", ".join(f"{f['score']:.2f}" for f in d.get("faces", []))
            return f"{who} sees {n} face{'s' if n != 1 else ''}{f' (scores {scores})' if n else ''} {prov}"
        if self.capability == "sensor_status":
            last = d.get("last")
            last_s = f"; last reading {last:g} {d.get('unit', '')}" if isinstance(last, (int, float)) else ""
            return (
                f"{who} {d.get('sensor', 'sensor')}: {d.get('status')} (confidence {d.get('confidence', 0):.0%}"
                f"{last_s}) {prov}"
            )
        if self.capability == "readings":
            vals = [v for v in d.get("values", []) if v is not None]
            if not vals:
                return f"{who} {d.get('sensor')}: no readings {prov}"
            return (
                f"{who} {d.get('sensor')}: {len(vals)} readings "
                f"from {min(vals):g} to {max(vals):g} {d.get('unit', '')}, "
                f"latest {vals[-1]:g} {prov}"
            )
        if self.capability == "snapshot":
            return (
                f"{who} snapshot: {d.get('width')}x{d.get('height')} {d.get('format', '').upper()} of "
                f"'{d.get('source')}' {prov}"
            )
        return f"{who} {self.capability}: {json.dumps(d)[:200]} {prov}"


def _load_password(cfg: EdgeConfig, credentials_file: Path | None) -> str:
    pw = os.environ.get(cfg.password_env, "") if cfg.password_env else ""
    if pw or credentials_file is None or not Path(credentials_file).exists():
        return pw
    try:
        creds = json.loads(Path(credentials_file).read_text())
    except (OSError, ValueError):
        return ""
    return str(creds.get("users", {}).get(cfg.username, ""))


def connect_edge_client(cfg: EdgeConfig, credentials_file: Path | None = None, timeout: float = 10.0):
    """An `MqttDeviceClient` connected with the config's broker settings (password from the
    environment variable `password_env`, else from a credentials file written by the simulator)."""
    from edge.client import MqttDeviceClient
    from edge.mqtt import BrokerSettings

    settings = BrokerSettings(
        host=cfg.host,
        port=cfg.port,
        username=cfg.username,
        password=_load_password(cfg, credentials_file),
        tls_ca=cfg.tls_ca,
        tls_cert=cfg.tls_cert,
        tls_key=cfg.tls_key,
    )
    with map_edge_errors(_BROKER_HINT):
        return MqttDeviceClient(settings, prefix=cfg.topic_prefix).connect(timeout)


class EdgeQueryTool(Tool):
    name = "edge_query"
    description = (
        "Ask a registered edge device (a camera, a sensor node, a door unit...) to compute a fresh answer on the "
        "device: classify what a camera sees, detect faces, judge whether a sensor behaves normally "
        "(normal/spike/drift/stuck/dropout), fetch recent sensor readings, or take a snapshot."
    )
    examples = (
        "what does the camera see right now?",
        "is the temperature sensor behaving normally?",
        "is anyone at the door?",
        "show me the last 10 humidity readings",
        "take a snapshot from the camera",
        "Which devices are online?",
        "摄像头现在看到了什么？",
        "传感器的温度正常吗？",
        "现在的湿度是多少？",
        "门口有人吗？",
        "哪些设备在线？",
    )
    plan_examples = PLAN_EXAMPLES
    max_concurrency = 4

    def __init__(
        self,
        client: Any = None,
        config: EdgeConfig | None = None,
        *,
        credentials_file: Path | None = None,
        timeout_s: float | None = None,
        retries: int = 1,
    ) -> None:
        super().__init__()
        self.client = client
        self._last_connect = -1e9
        self._vocab_key: tuple | None = None
        self._vocab: tuple[Cues, str] = (Cues(), "")
        self.config = config or EdgeConfig()
        self.credentials_file = credentials_file
        self.timeout_s = float(timeout_s if timeout_s is not None else self.config.request_timeout_s)
        self.retries = max(0, int(retries))

    @classmethod
    def from_config(cls, config: Any = None, models: Any = None) -> "EdgeQueryTool":
        """From the whole `Config`: its [edge] section, and the simulator's credentials file in the data dir."""
        from polymodal.config import Config

        config = config or Config()
        return cls(config=config.edge, credentials_file=config.paths.data() / "edge" / "credentials.json")

    def setup(self) -> None:
        if self.client is None:
            self.client = connect_edge_client(self.config, self.credentials_file)

    # -- what the router and planner see: the devices registered now -------------------------------
    def known_devices(self) -> list[Any]:
        """The devices the registry knows now, without waiting: with no connection yet, one is
        started in the background (at most every 30 s) and the answer is "none" until it is up."""
        if self.client is not None:
            return self.client.registry.devices()
        now = time.monotonic()
        if now - self._last_connect >= 30.0:
            self._last_connect = now

            def connect() -> None:
                try:
                    self.ensure_setup()
                except PolymodalError:
                    pass  # no broker: no devices, so no device cues

            threading.Thread(target=connect, daemon=True, name="edge-connect").start()
        return []

    def _vocabulary(self) -> tuple[Cues, str]:
        devices = self.known_devices()
        key = tuple((d.id, d.name, d.kind, tuple(d.aliases), tuple(sorted(d.capabilities))) for d in devices)
        if key != self._vocab_key:
            self._vocab = (device_cues(devices), planning_note(devices))
            self._vocab_key = key
        return self._vocab

    @property
    def cues(self) -> Cues:  # type: ignore[override]
        return self._vocabulary()[0]

    def planning_note(self) -> str:
        return self._vocabulary()[1]

    def devices(self) -> list[Any]:
        self.ensure_setup()
        return self.client.devices()

    def route_args(self, text: str, image: str | None = None) -> dict[str, Any] | None:
        """Arguments for a plain request without the LLM ("what does the garden camera see?"):
        a registered device named in the text, a capability from its words. None if unsure."""
        from edge.errors import EdgeError

        if image is not None or not text:
            return None
        try:
            self.ensure_setup()
            info = self.client.registry.resolve(text)
        except (EdgeError, DeviceError):
            return None
        caps = info.capabilities
        capability = capability_for(text, caps) or next((c for c in _DEFAULT_CAPABILITY if c in caps), None)
        if capability is None:
            return None
        params: dict[str, Any] = {}
        _infer_sensor(text, capability, caps, params)
        if capability == "readings" and (m := re.search(r"\b(?:last|latest|past)\s+(\d{1,3})\b", text, re.I)):
            params["n"] = min(500, max(1, int(m.group(1))))
        return {"device": info.id, "capability": capability, "parameters": params}

    def check_plan_args(self, args: dict[str, Any]) -> None:
        """A planned device must be registered now; a question about any other device is one for
        the documents (the planner is told so and asks again)."""
        from edge.errors import UnknownDevice

        device = args.get("device")
        if not isinstance(device, str) or device.startswith("$"):
            return  # filled from an earlier step: checked when it runs
        devices = self.known_devices()
        if not devices:
            raise DeviceError(f"no device is registered, so '{device}' cannot be asked: answer from the documents")
        try:
            self.client.registry.resolve(device)
        except UnknownDevice:
            names = ", ".join(d.name for d in devices)
            raise DeviceError(
                f"no registered device '{device}' (registered: {names}): answer a question about it from the documents"
            ) from None

    def followup_args(self, args: dict[str, Any], subject: str) -> dict[str, Any] | None:
        """ "and the greenhouse?": the same question of another device (which may need another capability)."""
        return {**args, **(self.route_args(subject, None) or {"device": subject})}

    def run(self, device: str, capability: Capability, parameters: dict | None = None) -> EdgeQueryResult:
        """Ask one device for a fresh on-device answer.

        Args:
            device: the device's id, name or alias, e.g. "garden camera", "greenhouse", "front door"
            capability: what to compute: classify, detect_faces, sensor_status, snapshot or readings
            parameters: optional, e.g. {"top_k": 3} for classify, {"sensor": "temperature"} for
                sensor_status/readings, {"n": 10} for readings
        """
        from edge.errors import DeviceOfflineError, DeviceReplyError, DeviceTimeoutError

        self.ensure_setup()
        with map_edge_errors():
            info = self.client.registry.resolve(device)
        caps = info.capabilities
        if capability not in caps:
            raise DeviceError(f"{info.id} ({info.name}) cannot {capability}; it can: {', '.join(caps) or 'nothing'}")
        params = dict(parameters or {})
        _infer_sensor(device, capability, caps, params)
        base = dict(device=info.id, device_name=info.name, capability=capability, model=info.model_for(capability))
        attempts = 0
        while True:
            check_cancelled()  # the step's token (polymodal.cancel): no further request once timed out
            attempts += 1
            try:
                r = self.client.request(info.id, capability, params, timeout=self.timeout_s)
            except DeviceTimeoutError as exc:
                if attempts <= self.retries:
                    continue
                return EdgeQueryResult(
                    status="timeout", error=f"{exc} (tried {attempts} times)", attempts=attempts, **base
                )
            except DeviceOfflineError as exc:
                return EdgeQueryResult(status="offline", error=str(exc), attempts=attempts, **base)
            except DeviceReplyError as exc:
                return EdgeQueryResult(status="error", error=f"{exc} ({exc.code})", attempts=attempts, **base)
            return EdgeQueryResult(
                status="ok",
                device=r.device,
                device_name=info.name,
                capability=r.capability,
                model=r.model,
                timestamp=r.timestamp,
                inference_ms=r.inference_ms,
                device_ms=r.device_ms,
                round_trip_ms=r.round_trip_ms,
                data=r.data,
                attempts=attempts,
            )


# a device's main job when the words do not say
_DEFAULT_CAPABILITY = ("classify", "sensor_status", "detect_faces", "readings", "snapshot")


_SENSOR_WORDS = {"temperature": ("temp ", "温度"), "humidity": ("湿度",), "soil_moisture": ("soil", "土壤")}


def _infer_sensor(device: str, capability: str, caps: dict[str, Any], params: dict[str, Any]) -> None:
    """'greenhouse temperature sensor' names the sensor too: pass it on when not given."""
    if "sensor" in params:
        return
    text = device.lower().replace("-", " ").replace("_", " ")
    for sensor in caps.get(capability, {}).get("sensors", []):
        if any(word in text for word in (sensor.replace("_", " "), *_SENSOR_WORDS.get(sensor, ()))):
            params["sensor"] = sensor
            return
