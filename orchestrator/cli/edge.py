"""`polymodal edge broker|simulate|devices|query`: the edge fleet from the shell.

polymodal edge simulate --devices 3      # a local mosquitto (if none) + camera, greenhouse, door
polymodal edge devices --json
polymodal edge query "garden camera" classify --param top_k=3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from orchestrator.cli._common import (
    add_json_flag,
    config_from_args,
    emit,
    fail,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    wait_for_stop,
)
from orchestrator.fleet import credentials_file, start_broker, start_fleet
from polymodal.errors import DeviceError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    edge = sub.add_parser("edge", help="edge devices: run a broker or a simulated fleet, list devices, query one")
    es = edge.add_subparsers(dest="edge_command", metavar="ACTION", required=True)

    p = add_json_flag(es.add_parser("broker", help="run a local mosquitto with generated users and ACLs"))
    p.add_argument("--devices", type=non_negative_int, default=3, help="how many simulated device users to create")
    p.add_argument(
        "--duration", type=non_negative_float, default=0, help="stop after this many seconds (0: until Ctrl-C)"
    )
    p.set_defaults(func=cmd_broker)

    p = add_json_flag(es.add_parser("simulate", help="run simulated devices (starts a local broker if none runs)"))
    p.add_argument(
        "--devices", type=positive_int, default=3, help="number of devices: camera, greenhouse, door, then repeats"
    )
    p.add_argument("--mode", choices=("thread", "process"), default="thread")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SENSOR=FAULT",
        help="inject a fault into the greenhouse, e.g. temperature=stuck (spike, drift, stuck, dropout)",
    )
    p.add_argument(
        "--photos",
        default="",
        metavar="DIR",
        help="folder of images the cameras cycle through "
        "(default: the photos that ship with scikit-image and scikit-learn)",
    )
    p.add_argument(
        "--duration", type=non_negative_float, default=0, help="stop after this many seconds (0: until Ctrl-C)"
    )
    p.set_defaults(func=cmd_simulate)

    p = add_json_flag(es.add_parser("devices", help="list registered devices"))
    p.set_defaults(func=cmd_devices)

    p = add_json_flag(es.add_parser("query", help="ask one device for a fresh on-device answer"))
    p.add_argument("device", help="device id, name or alias")
    p.add_argument("capability", help="classify, detect_faces, sensor_status, snapshot, readings")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="capability parameter (repeatable)")
    p.add_argument(
        "--timeout", type=positive_float, default=None, help="seconds per attempt (default: [edge] request_timeout_s)"
    )
    p.set_defaults(func=cmd_query)


def cmd_broker(args: argparse.Namespace) -> int:
    from edge.broker import port_open
    from edge.fleet import fleet_specs

    config = config_from_args(args)
    if port_open(config.edge.host, config.edge.port):
        return fail(args, f"something already listens on {config.edge.host}:{config.edge.port}")
    broker = start_broker(config, [s.id for s in fleet_specs(args.devices)])
    creds = credentials_file(config)
    try:
        emit(
            args,
            {"ok": True, "host": broker.host, "port": broker.port, "credentials": str(creds)},
            f"mosquitto on {broker.host}:{broker.port}; credentials in {creds} (Ctrl-C to stop)",
        )
        wait_for_stop(args.duration)
    finally:
        broker.stop()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from edge.fleet import fleet_specs

    config = config_from_args(args)
    faults = dict(f.split("=", 1) for f in args.fault if "=" in f)
    if len(faults) != len(args.fault):
        return fail(args, "--fault takes SENSOR=FAULT, e.g. temperature=stuck")
    specs = fleet_specs(args.devices)
    if args.photos:
        if not Path(args.photos).is_dir():
            return fail(args, f"--photos: {args.photos} is not a folder")
        for s in specs:
            s.photo_dir = str(Path(args.photos).resolve())
    local = start_fleet(config, specs, mode=args.mode)
    try:
        for sensor, fault in faults.items():
            for dev in local.fleet.devices.values():
                if sensor in dev.sensors:
                    dev.sensors[sensor].inject(fault)
        rows = [{"id": s.id, "role": s.role, "name": s.name} for s in specs]
        text = "\n".join(f"{r['id']:14s} {r['role']:11s} {r['name']}" for r in rows)
        where = local.where + (" (started here)" if local.broker else "")
        emit(
            args,
            {"ok": True, "broker": where, "devices": rows},
            f"{len(rows)} simulated devices online via {where}:\n{text}\nCtrl-C to stop",
        )
        wait_for_stop(args.duration)
    finally:
        local.stop()
    return 0


def _tool(config, timeout: float | None = None):
    from tools.edge_query import EdgeQueryTool

    return EdgeQueryTool(config=config.edge, credentials_file=credentials_file(config), timeout_s=timeout)


def cmd_devices(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    tool = _tool(config)
    try:
        devices = tool.devices()
    finally:
        if tool.client is not None:
            tool.client.close()
    now = time.time()
    rows = []
    for d in devices:
        rows.append(
            {
                "id": d.id,
                "name": d.name,
                "kind": d.kind,
                "location": d.location,
                "aliases": d.aliases,
                "online": d.online,
                "last_seen": d.last_seen,
                "capabilities": sorted(d.capabilities),
                "models": sorted(d.models),
                "firmware": d.firmware,
            }
        )
    lines = [
        f"{r['id']:14s} {'online ' if r['online'] else 'offline'} "
        f"{('seen ' + str(round(now - r['last_seen'])) + ' s ago') if r['last_seen'] else 'never seen':16s} "
        f"{', '.join(r['capabilities'])}"
        for r in rows
    ]
    emit(args, {"ok": True, "devices": rows}, "\n".join(lines) if lines else "no devices registered")
    return 0


def _parse_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise DeviceError(f"--param takes K=V, got {pair!r}")
        k, v = pair.split("=", 1)
        try:
            params[k.strip()] = json.loads(v)
        except ValueError:
            params[k.strip()] = v
    return params


def cmd_query(args: argparse.Namespace) -> int:
    from tools.edge_query import CAPABILITIES

    config = config_from_args(args)
    if args.capability not in CAPABILITIES:
        return fail(args, f"unknown capability {args.capability!r}; choose from {', '.join(CAPABILITIES)}")
    tool = _tool(config, args.timeout)
    try:
        result = tool({"device": args.device, "capability": args.capability, "parameters": _parse_params(args.param)})
    finally:
        if tool.client is not None:
            tool.client.close()
    if not result.ok:
        if args.json:  # the whole result (which device, why) on stdout, the reason on stderr
            emit(args, {"ok": False, "error": result.error, "result": result})
            print(f"error: {result.error}", file=sys.stderr)
            return 1
        result.raise_for_status()
    emit(args, {"ok": True, "result": result}, result.summary())
    return 0
