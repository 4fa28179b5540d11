"""The orchestrator's view of the fleet, fed by retained announcements and status messages:
which devices exist, what they can do, whether they are online and when they were last seen.
Names resolve to ids here, so a request can only go to a registered device."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from edge.errors import UnknownDevice

__all__ = ["DeviceInfo", "DeviceRegistry"]


@dataclass
class DeviceInfo:
    id: str
    name: str = ""
    kind: str = ""
    aliases: list[str] = field(default_factory=list)
    location: str = ""
    firmware: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    online: bool = False
    last_seen: float = 0.0  # epoch seconds of the last message from the device
    announced_at: float = 0.0
    offline_reason: str = ""

    def model_for(self, capability: str) -> str:
        return str(self.capabilities.get(capability, {}).get("model", ""))

    def summary(self) -> str:
        state = "online" if self.online else "offline"
        caps = ", ".join(self.capabilities) or "no capabilities"
        where = f" at {self.location}" if self.location else ""
        return f"{self.id} ({self.name}{where}): {state}; {caps}"


class DeviceRegistry:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceInfo] = {}
        self._lock = threading.RLock()  # RLock: wait_for's predicate reads the registry
        self._changed = threading.Condition(self._lock)

    # -- feeding --------------------------------------------------------------------------
    def on_announce(self, device_id: str, msg: dict[str, Any]) -> None:
        if not msg:  # an empty retained message clears the device
            with self._changed:
                self._devices.pop(device_id, None)
                self._changed.notify_all()
            return
        with self._changed:
            info = self._devices.get(device_id) or DeviceInfo(id=device_id)
            info.name = str(msg.get("name") or device_id)
            info.kind = str(msg.get("kind", ""))
            info.aliases = [str(a) for a in msg.get("aliases", [])]
            info.location = str(msg.get("location", ""))
            info.firmware = str(msg.get("firmware", ""))
            info.capabilities = dict(msg.get("capabilities", {}))
            info.models = dict(msg.get("models", {}))
            info.announced_at = float(msg.get("ts") or time.time())
            self._devices[device_id] = info
            self._changed.notify_all()

    def on_status(self, device_id: str, msg: dict[str, Any]) -> None:
        with self._changed:
            info = self._devices.setdefault(device_id, DeviceInfo(id=device_id))
            online = msg.get("state") == "online"
            info.online = online
            info.offline_reason = "" if online else str(msg.get("reason", ""))
            ts = msg.get("ts")
            if online:
                info.last_seen = float(ts) if ts else time.time()
            self._changed.notify_all()

    def seen(self, device_id: str) -> None:
        with self._lock:
            info = self._devices.get(device_id)
            if info is not None:
                info.last_seen = time.time()

    # -- reading --------------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        """Announced devices, by id (a status without an announcement is not a device yet)."""
        with self._lock:
            return [_copy(d) for _, d in sorted(self._devices.items()) if d.announced_at]

    def get(self, device_id: str) -> DeviceInfo | None:
        with self._lock:
            d = self._devices.get(device_id)
            return _copy(d) if d is not None and d.announced_at else None

    def resolve(self, name: str) -> DeviceInfo:
        """Id, name or alias (case-insensitive), else a unique part of one, else a phrase containing one."""
        key = _norm(name)
        devices = self.devices()

        def names(d: DeviceInfo) -> list[str]:
            return [_norm(n) for n in [d.id, d.name, *d.aliases] if n]

        exact = [d for d in devices if key in names(d)]
        if len(exact) == 1:
            return exact[0]
        partial = [d for d in devices if key and any(key in n for n in names(d))]
        if len(exact) == 0 and len(partial) == 1:
            return partial[0]
        if not exact and not partial:
            # "the greenhouse humidity sensor": a device name inside the phrase; the longest wins
            padded = f" {key} "
            hits = sorted(
                (
                    (len(n), d.id, d)
                    for d in devices
                    for n in names(d)
                    if f" {n} " in padded or (_CJK.search(n) and n in key)
                ),
                reverse=True,
            )
            if hits and (len(hits) == 1 or hits[0][0] > hits[1][0] or hits[0][1] == hits[1][1]):
                return hits[0][2]
        known = ", ".join(d.id for d in devices) or "none registered"
        if len(exact) > 1 or len(partial) > 1:
            amb = ", ".join(d.id for d in (exact or partial))
            raise UnknownDevice(f"device {name!r} is ambiguous: {amb}")
        raise UnknownDevice(f"no registered device {name!r}; known devices: {known}")

    def wait_for(self, predicate, timeout: float) -> bool:
        """Block until `predicate(registry)` holds (re-checked on every update) or timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate(self):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")  # no spaces between words there


def _norm(text: str) -> str:
    """Lower case, punctuation, '-' and '_' to single spaces: "Front-Door?" -> "front door"."""
    return " ".join(re.sub(r"[\W_]+", " ", str(text).lower()).split())


def _copy(d: DeviceInfo) -> DeviceInfo:
    return DeviceInfo(
        **{**d.__dict__, "aliases": list(d.aliases), "capabilities": dict(d.capabilities), "models": dict(d.models)}
    )
