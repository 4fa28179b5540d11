"""The simulated fleet: a garden camera, a greenhouse sensor node and a front-door unit, each a
real `DeviceAgent` with real LiteRT models talking MQTT v5 to the broker. Devices run as threads
in this process (default) or as separate processes (`mode="process"`, killable like real ones).

    fleet = SimulatedFleet(fleet_specs(3), host, port, passwords).start()
    fleet.device("greenhouse").sensors["temperature"].inject("stuck")
    fleet.kill("garden-cam")          # no DISCONNECT: the broker publishes the last will
    fleet.stop()

    python -m edge.fleet --role camera --id garden-cam --port 1883 --password-env DEVICE_PASSWORD
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from edge.agent import DeviceAgent
from edge.camera import CameraSource, load_folder
from edge.capabilities import Capability, Classify, DetectFaces, Readings, SensorStatus, Snapshot
from edge.faces import FaceDetector
from edge.models import FACE_MODEL, load_model
from edge.mqtt import BrokerSettings
from edge.protocol import DEFAULT_PREFIX
from edge.sensors import GREENHOUSE, SimulatedSensor

__all__ = ["DeviceSpec", "SimulatedDevice", "SimulatedFleet", "fleet_specs", "build_device", "demo_fleet", "ROLES"]

ROLES = ("camera", "greenhouse", "door")
_BASE = {
    "camera": ("garden-cam", "garden camera", ("garden", "backyard camera", "花园摄像头", "花园"), "garden"),
    "greenhouse": (
        "greenhouse",
        "greenhouse sensor node",
        ("greenhouse sensors", "greenhouse temperature sensor", "温室传感器", "温室"),
        "greenhouse",
    ),
    "door": ("front-door", "front door unit", ("door", "doorbell", "front door camera", "门口", "前门"), "front door"),
}


@dataclass
class DeviceSpec:
    role: str
    id: str
    name: str = ""
    aliases: tuple[str, ...] = ()
    location: str = ""
    threads: int = 1
    photos: list[tuple[str, Any]] | None = None  # camera photos; None: photo_dir, else scikit-image/-learn photos
    photo_dir: str = ""  # a folder of images for the camera to cycle through
    seed: int = 0


def fleet_specs(n: int = 3, roles: tuple[str, ...] = ROLES) -> list[DeviceSpec]:
    """n devices cycling through the roles: garden-cam, greenhouse, front-door, garden-cam-2, ..."""
    specs = []
    for i in range(n):
        role = roles[i % len(roles)]
        base_id, name, aliases, location = _BASE[role]
        k = i // len(roles) + 1
        suffix = "" if k == 1 else f"-{k}"
        specs.append(
            DeviceSpec(
                role=role,
                id=base_id + suffix,
                name=name + (f" {k}" if k > 1 else ""),
                aliases=aliases if k == 1 else (),
                location=location,
                seed=i,
            )
        )
    return specs


@dataclass
class SimulatedDevice:
    spec: DeviceSpec
    agent: DeviceAgent
    camera: CameraSource | None = None
    sensors: dict[str, SimulatedSensor] = field(default_factory=dict)


def build_device(
    spec: DeviceSpec, settings: BrokerSettings, prefix: str = DEFAULT_PREFIX, heartbeat_s: float = 30.0
) -> SimulatedDevice:
    camera = None
    sensors: dict[str, SimulatedSensor] = {}
    caps: list[Capability] = []
    if spec.role in ("camera", "door"):
        photos = spec.photos if spec.photos is not None else (load_folder(spec.photo_dir) if spec.photo_dir else None)
        if photos is not None and not photos:
            raise FileNotFoundError(f"no images (.jpg .png .bmp .webp) in {spec.photo_dir}")
        camera = CameraSource(photos)
        if spec.role == "door":
            pinned = "astronaut" if "astronaut" in camera.names and not spec.photo_dir else None
            camera.show(pinned)  # someone is at the door
            caps.append(DetectFaces(FaceDetector(load_model(FACE_MODEL, spec.threads)), camera))
        caps.append(Classify(load_model("efficientnet_lite0_int8", spec.threads), camera))
        caps.append(Snapshot(camera))
    elif spec.role == "greenhouse":
        sensors = {s.name: SimulatedSensor(s, seed=spec.seed * 10 + i) for i, s in enumerate(GREENHOUSE)}
        caps.append(SensorStatus(load_model("sensor_anomaly_int8", spec.threads), sensors))
        caps.append(Readings(sensors))
    else:
        raise ValueError(f"unknown role {spec.role!r}; choose from {ROLES}")
    agent = DeviceAgent(
        spec.id,
        caps,
        settings,
        prefix=prefix,
        name=spec.name or spec.id,
        kind=spec.role,
        aliases=spec.aliases,
        location=spec.location,
        heartbeat_s=heartbeat_s,
    )
    return SimulatedDevice(spec, agent, camera, sensors)


class SimulatedFleet:
    """Start/stop a set of simulated devices against one broker."""

    def __init__(
        self,
        specs: list[DeviceSpec],
        host: str,
        port: int,
        passwords: dict[str, str],
        *,
        prefix: str = DEFAULT_PREFIX,
        keepalive: int = 10,
        tls_ca: str = "",
        mode: str = "thread",
        sensor_interval_s: float = 1.0,
        tcp_nodelay: bool = True,
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError("mode must be 'thread' or 'process'")
        self.specs = specs
        self.host, self.port, self.passwords = host, port, passwords
        self.prefix, self.keepalive, self.tls_ca, self.mode = prefix, keepalive, tls_ca, mode
        self.sensor_interval_s = sensor_interval_s
        self.tcp_nodelay = tcp_nodelay
        self.devices: dict[str, SimulatedDevice] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def settings(self, device_id: str) -> BrokerSettings:
        return BrokerSettings(
            self.host,
            self.port,
            device_id,
            self.passwords.get(device_id, ""),
            tls_ca=self.tls_ca,
            keepalive=self.keepalive,
            tcp_nodelay=self.tcp_nodelay,
        )

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.specs]

    def device(self, device_id: str) -> SimulatedDevice:
        return self.devices[device_id]

    def start(self, timeout: float = 30.0) -> "SimulatedFleet":
        for spec in self.specs:
            if self.mode == "thread":
                dev = build_device(spec, self.settings(spec.id), self.prefix)
                dev.agent.start(timeout)
                self.devices[spec.id] = dev
            else:
                self.processes[spec.id] = self._spawn(spec)
        if self.mode == "thread":
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="fleet-sensors", daemon=True)
            self._ticker.start()
        return self

    def _spawn(self, spec: DeviceSpec) -> subprocess.Popen:
        env = dict(os.environ, POLYMODAL_DEVICE_PASSWORD=self.passwords.get(spec.id, ""))
        cmd = [
            sys.executable,
            "-m",
            "edge.fleet",
            "--role",
            spec.role,
            "--id",
            spec.id,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--keepalive",
            str(self.keepalive),
            "--prefix",
            self.prefix,
            "--threads",
            str(spec.threads),
            "--name",
            spec.name,
            "--location",
            spec.location,
            "--photos",
            spec.photo_dir,
        ]
        for a in spec.aliases:
            cmd += ["--alias", a]
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)

    def _tick(self) -> None:
        while not self._stop.wait(self.sensor_interval_s):
            for dev in list(self.devices.values()):
                for s in dev.sensors.values():
                    s.tick()

    def kill(self, device_id: str) -> None:
        """Kill a device without a goodbye: SIGKILL its process, or drop its TCP connection."""
        if device_id in self.processes:
            proc = self.processes.pop(device_id)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        else:
            self.devices.pop(device_id).agent.crash()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None
        for dev in self.devices.values():
            dev.agent.stop()
        self.devices.clear()
        for proc in self.processes.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.processes.clear()

    def __enter__(self) -> "SimulatedFleet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def demo_fleet(n: int = 3, mode: str = "thread"):
    """A private mosquitto on a free loopback port with `n` simulated devices, for the app and tests:

    with demo_fleet(3) as (broker, fleet):
        client = MqttDeviceClient(broker.settings()).connect()
    """
    from edge.broker import MosquittoBroker

    specs = fleet_specs(n)
    with MosquittoBroker(devices=[s.id for s in specs]) as broker:
        with SimulatedFleet(specs, broker.host, broker.port, broker.passwords, mode=mode) as fleet:
            yield broker, fleet


def main(argv: list[str] | None = None) -> int:
    """Run one simulated device until SIGTERM/SIGINT (graceful) or SIGKILL (the will fires)."""
    p = argparse.ArgumentParser(
        prog="python -m edge.fleet", description="Run one simulated edge device.", allow_abbrev=False
    )
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--location", default="")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--username", default="", help="default: the device id")
    p.add_argument("--password-env", default="POLYMODAL_DEVICE_PASSWORD")
    p.add_argument("--tls-ca", default="")
    p.add_argument("--keepalive", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prefix", default=DEFAULT_PREFIX)
    p.add_argument("--photos", default="", help="folder of images for a camera (default: bundled sample photos)")
    a = p.parse_args(argv)
    settings = BrokerSettings(
        a.host, a.port, a.username or a.id, os.environ.get(a.password_env, ""), tls_ca=a.tls_ca, keepalive=a.keepalive
    )
    spec = DeviceSpec(a.role, a.id, a.name, tuple(a.alias), a.location, a.threads, photo_dir=a.photos)
    dev = build_device(spec, settings, a.prefix)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    dev.agent.start()
    print(f"{a.id}: online ({a.role}) at {a.host}:{a.port}", flush=True)
    while not stop.wait(1.0):
        for s in dev.sensors.values():
            s.tick()
    dev.agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
