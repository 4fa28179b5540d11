"""Edge round trip: orchestrator -> broker -> device -> broker -> orchestrator on loopback through a
real mosquitto, excluding on-device work (round trip minus the device's own handling time), with
TCP_NODELAY (the default) and, as the baseline in the same run, with Nagle's algorithm left on.
Also: requests/s one device sustains with concurrent callers, for a model-free capability and
for the real models.

    python -m bench.edge_roundtrip [--n 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def _round_trips(n: int, nodelay: bool, capability: str = "readings", params: dict | None = None) -> dict:
    from edge.broker import MosquittoBroker
    from edge.client import MqttDeviceClient
    from edge.fleet import DeviceSpec, SimulatedFleet

    spec = DeviceSpec("greenhouse", "bench-node")
    with MosquittoBroker(devices=[spec.id], tcp_nodelay=nodelay) as broker:
        with SimulatedFleet([spec], broker.host, broker.port, broker.passwords, tcp_nodelay=nodelay):
            with MqttDeviceClient(broker.settings()) as client:
                client.registry.wait_for(lambda r: (d := r.get(spec.id)) is not None and d.online, 30)
                for _ in range(20):  # warm up
                    client.request(spec.id, capability, params or {"n": 1})
                net, total = [], []
                for _ in range(n):
                    r = client.request(spec.id, capability, params or {"n": 1}, timeout=10)
                    total.append(r.round_trip_ms)
                    net.append(r.round_trip_ms - r.device_ms)
    return {
        "tcp_nodelay": nodelay,
        "requests": n,
        "net_p50_ms": round(_pct(net, 50), 3),
        "net_p99_ms": round(_pct(net, 99), 3),
        "total_p50_ms": round(_pct(total, 50), 3),
    }


def _throughput(role: str, device_id: str, capability: str, params: dict, n: int, callers: int = 8) -> dict:
    from edge.broker import MosquittoBroker
    from edge.client import MqttDeviceClient
    from edge.fleet import DeviceSpec, SimulatedFleet

    spec = DeviceSpec(role, device_id, threads=2)
    with MosquittoBroker(devices=[spec.id]) as broker:
        with SimulatedFleet([spec], broker.host, broker.port, broker.passwords):
            with MqttDeviceClient(broker.settings()) as client:
                client.registry.wait_for(lambda r: (d := r.get(spec.id)) is not None and d.online, 60)
                for _ in range(5):
                    client.request(spec.id, capability, params, timeout=30)
                t0 = time.perf_counter()
                with ThreadPoolExecutor(callers) as pool:
                    replies = list(
                        pool.map(lambda _: client.request(spec.id, capability, params, timeout=60), range(n))
                    )
                dt = time.perf_counter() - t0
    inference = [r.inference_ms for r in replies]
    return {
        "capability": capability,
        "requests": n,
        "callers": callers,
        "requests_per_s": round(n / dt, 1),
        "inference_ms_p50": round(_pct(inference, 50), 3),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=500, help="sequential requests per round-trip measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    out: dict = {"round_trip": [], "throughput": []}
    print("round trip excluding on-device work (loopback, mosquitto, QoS 1, MQTT v5):")
    for nodelay in (True, False):
        n = args.n if nodelay else max(20, args.n // 10)  # Nagle makes each request ~40-100 ms
        r = _round_trips(n, nodelay)
        out["round_trip"].append(r)
        label = "TCP_NODELAY (default)" if nodelay else "Nagle on (baseline)"
        print(f"  {label:22s} p50 {r['net_p50_ms']:8.3f} ms  p99 {r['net_p99_ms']:8.3f} ms  ({r['requests']} requests)")
    print("requests/s one device sustains (8 concurrent callers):")
    for role, dev, cap, params, n in (
        ("greenhouse", "tp-node", "readings", {"n": 1}, 2000),
        ("greenhouse", "tp-node", "sensor_status", {}, 1000),
        ("door", "tp-door", "detect_faces", {}, 300),
        ("camera", "tp-cam", "classify", {}, 200),
    ):
        t = _throughput(role, dev, cap, params, n)
        out["throughput"].append(t)
        print(
            f"  {cap:14s} {t['requests_per_s']:8.1f} req/s  "
            f"(model invoke p50 {t['inference_ms_p50']:.2f} ms, 2 threads)"
        )
    if args.json:
        print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
