"""Devices tab handlers: the device table and the sensor plot, over the app's `FleetService`
(`orchestrator.ui.fleet`). Plain functions (no gradio at import), so they are tested without a browser.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from orchestrator.ui.services import AppServices
from polymodal.errors import PolymodalError

__all__ = ["device_rows", "sensor_frame"]

log = logging.getLogger("polymodal.app")


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
    rows = [
        [
            d.id,
            d.name,
            "● online" if d.online else "○ offline",
            _ago(d.last_seen),
            ", ".join(sorted(d.capabilities)),
            d.location,
        ]
        for d in devices
    ]
    online = sum(1 for d in devices if d.online)
    return rows, f"{online} of {len(devices)} device(s) online" if devices else "no devices registered"


def sensor_frame(services: AppServices, n: int = 30):
    """A long-format DataFrame (seconds before now, value, series) of the latest readings of every
    sensor device (relative seconds: device clocks and the browser's time zone need not agree)."""
    import pandas as pd

    frames = []
    # Typed even when empty: the plot fixes its encodings from the first frame it is given.
    empty = pd.DataFrame(
        {"seconds": pd.Series(dtype=float), "value": pd.Series(dtype=float), "series": pd.Series(dtype=str)}
    )
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
            frames.append(
                pd.DataFrame(
                    {
                        "seconds": [round(t - now, 1) for t in times[: len(vals)]],
                        "value": vals,
                        "series": f"{d.id}/{sensor} ({data.get('unit', '')})",
                    }
                )
            )
    if not frames:
        return empty
    out = pd.concat(frames, ignore_index=True)
    # A dropout reading is None: coerce, or the column is 'object' and the plot draws no line.
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype(float)
    return out.dropna()
