"""Devices tab handlers: the simulated fleet, the device table and the sensor plot.

Plain functions (no gradio at import), so they are tested without a browser.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polymodal.config import Config
from polymodal.errors import DeviceError, PolymodalError

if TYPE_CHECKING:  # services builds a FleetService: import it for type hints only
    from orchestrator.ui.services import AppServices

log = logging.getLogger("polymodal.app")


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


