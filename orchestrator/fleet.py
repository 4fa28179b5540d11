"""A local simulated edge fleet, started the same way by `polymodal edge simulate` and the app's Devices
tab: reuse the broker already listening on the [edge] port (its credentials file holds the devices'
passwords), else start a private mosquitto and write that file; then connect the simulated devices.

Here, not in `edge/`: the device side imports nothing from polymodal, and this reads the `Config`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from polymodal.config import Config
from polymodal.errors import DeviceError

if TYPE_CHECKING:  # edge is an optional extra: imported where a broker or a fleet starts
    from edge.broker import MosquittoBroker
    from edge.fleet import DeviceSpec, SimulatedFleet

__all__ = ["LocalFleet", "credentials_file", "start_broker", "start_fleet"]


def credentials_file(config: Config) -> Path:
    """Where a broker started here writes every user's password (read by the devices and the edge tool)."""
    return config.paths.data() / "edge" / "credentials.json"


def start_broker(config: Config, device_ids: list[str]) -> MosquittoBroker:
    """A private mosquitto on the [edge] host and port (with its TLS files when set), with users for the
    orchestrator and `device_ids`; their passwords are written to `credentials_file(config)`."""
    from edge.broker import MosquittoBroker
    from tools.edge_query import map_edge_errors

    cfg = config.edge
    broker = MosquittoBroker(
        devices=device_ids,
        orchestrators=(cfg.username,),
        host=cfg.host,
        port=cfg.port,
        prefix=cfg.topic_prefix,
        tls_cert=cfg.tls_cert,
        tls_key=cfg.tls_key,
        tls_ca=cfg.tls_ca,
    )
    with map_edge_errors():
        broker.start()
    broker.write_credentials(credentials_file(config))
    return broker


@dataclass
class LocalFleet:
    """A running simulated fleet, and the broker started for it (None when one was already listening)."""

    fleet: SimulatedFleet
    broker: MosquittoBroker | None

    @property
    def where(self) -> str:
        return f"{self.fleet.host}:{self.fleet.port}"

    def stop(self) -> None:
        try:
            self.fleet.stop()
        finally:
            if self.broker is not None:
                self.broker.stop()


def start_fleet(config: Config, specs: list[DeviceSpec], mode: str = "thread") -> LocalFleet:
    """Start `specs` as simulated devices against the configured broker, starting one if none listens.
    Raises a one-line `DeviceError` (and leaves nothing running) when that fails."""
    from edge.broker import port_open
    from edge.fleet import SimulatedFleet
    from tools.edge_query import map_edge_errors

    cfg = config.edge
    broker = None
    if port_open(cfg.host, cfg.port):
        passwords = _device_passwords(config, specs)
    else:
        broker = start_broker(config, [s.id for s in specs])
        passwords = broker.passwords
    fleet = SimulatedFleet(specs, cfg.host, cfg.port, passwords, prefix=cfg.topic_prefix, tls_ca=cfg.tls_ca, mode=mode)
    local = LocalFleet(fleet, broker)
    try:
        with map_edge_errors():  # the broker refused a device
            fleet.start()
    except FileNotFoundError as exc:  # a device's model file is missing
        local.stop()
        raise DeviceError(str(exc)) from None
    except BaseException:
        local.stop()
        raise
    return local


def _device_passwords(config: Config, specs: list[DeviceSpec]) -> dict[str, str]:
    """The running broker's device passwords, from the credentials file of whoever started it."""
    cfg, path = config.edge, credentials_file(config)
    try:
        passwords = json.loads(path.read_text()).get("users", {})
    except (OSError, ValueError):
        raise DeviceError(
            f"a broker runs on {cfg.host}:{cfg.port} but {path} has no device passwords: "
            "start it with 'polymodal edge broker'"
        ) from None
    missing = [s.id for s in specs if s.id not in passwords]
    if missing:
        raise DeviceError(
            f"the running broker has no users for {', '.join(missing)}: restart it with "
            f"'polymodal edge broker --devices {len(specs)}'"
        )
    return passwords
