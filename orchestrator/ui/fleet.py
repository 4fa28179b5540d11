"""The app's handle on the edge fleet: the simulated fleet its Devices tab starts and stops, and the
one MQTT client the tab and the agent's edge_query tool share (so the app holds one connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.fleet import LocalFleet, credentials_file, start_fleet
from polymodal.config import Config
from tools.edge_query import map_edge_errors

__all__ = ["FleetService"]


def _no_tools() -> Mapping[str, Any]:
    return {}


class FleetService:
    """The simulated fleet the app can start/stop (with a private broker when none listens on the
    configured port), and the MQTT client the devices tab and the edge_query tool share.

    `agent_tools` returns the tools of the agent if it has been built (and {} before: asking for the
    devices must not load the models), so the client can be shared with the edge_query tool."""

    def __init__(
        self, config: Config, agent_tools: Callable[[], Mapping[str, Any]] = _no_tools, n_devices: int = 3
    ) -> None:
        self.config = config
        self.agent_tools = agent_tools
        self.n_devices = n_devices
        self.local: LocalFleet | None = None
        self._client: Any = None
        self._lock = threading.RLock()

    @property
    def credentials_file(self) -> Path:
        return credentials_file(self.config)

    @property
    def running(self) -> bool:
        return self.local is not None

    def _edge_tool(self) -> Any:
        from tools.edge_query import EdgeQueryTool

        return next((t for t in self.agent_tools().values() if isinstance(t, EdgeQueryTool)), None)

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
        from edge.fleet import fleet_specs

        with self._lock:
            if self.local is not None:
                return "the simulated fleet is already running"
            specs = fleet_specs(self.n_devices)
            self.local = start_fleet(self.config, specs)
            try:
                with map_edge_errors():
                    client = self.client()
                    client.registry.wait_for(
                        lambda r: all((d := r.get(s.id)) is not None and d.online for s in specs), 10.0
                    )
            except BaseException:
                self.stop()
                raise
            where = self.local.where + (" (broker started by the app)" if self.local.broker else "")
            return f"{len(specs)} simulated devices started via {where}"

    def stop(self) -> str:
        with self._lock:
            local, self.local = self.local, None
            if local is None:
                return "no simulated fleet was running"
            local.fleet.stop()
            if local.broker is not None:
                self._drop_clients_of_our_broker()
                local.broker.stop()
            return "the simulated fleet is stopped"

    def _drop_clients_of_our_broker(self) -> None:
        # Clients of the broker we started die with it (a restarted broker has new passwords): ours,
        # and the edge tool's if it connected there; the tool reconnects on its next use.
        cfg = self.config.edge
        tool = self._edge_tool()
        tool_client = getattr(tool, "client", None)
        settings = getattr(tool_client, "settings", None)
        where = getattr(settings, "port", None), getattr(settings, "host", None)
        if tool_client is not None and (tool_client is self._client or where == (cfg.port, cfg.host)):
            if tool_client is not self._client:
                tool_client.close()
            tool.client = None
            tool.reset()  # the next request connects again
        if self._client is not None:
            self._client.close()
            self._client = None

    def readings(self, device: str, sensor: str, n: int = 30) -> dict[str, Any]:
        client = self.client()
        with map_edge_errors():
            return client.request(device, "readings", {"sensor": sensor, "n": n}, timeout=3.0).data
