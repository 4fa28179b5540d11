"""`polymodal edge ...` from the shell: in-process against the test broker, and `simulate` as a
real subprocess that starts its own mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from edge.broker import free_port
from orchestrator.cli import main

pytestmark = pytest.mark.broker


@pytest.fixture
def config_file(tmp_path, broker, fleet, monkeypatch):
    monkeypatch.setenv("POLYMODAL_MQTT_PASSWORD", broker.password("orchestrator"))
    p = tmp_path / "config.toml"
    p.write_text(f'[edge]\nhost = "{broker.host}"\nport = {broker.port}\nrequest_timeout_s = 10.0\n')
    return str(p)


def run_json(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_devices_json_lists_the_fleet(capsys, config_file):
    code, out = run_json(capsys, "--config", config_file, "edge", "devices", "--json")
    assert code == 0 and out["ok"]
    rows = {d["id"]: d for d in out["devices"]}
    assert rows["garden-cam"]["online"] and "classify" in rows["garden-cam"]["capabilities"]
    assert rows["greenhouse"]["models"] == ["sensor_anomaly_int8"]


def test_query_json_and_params(capsys, config_file, fleet):
    fleet.device("garden-cam").camera.show("coffee")
    code, out = run_json(
        capsys, "--config", config_file, "edge", "query", "garden camera", "classify", "--param", "top_k=2", "--json"
    )
    assert code == 0 and out["ok"]
    assert out["result"]["device"] == "garden-cam" and len(out["result"]["data"]["labels"]) == 2
    assert out["result"]["data"]["labels"][0]["label"] == "espresso"
    code = main(["--config", config_file, "edge", "query", "greenhouse", "readings", "--param", "n=3"])
    text = capsys.readouterr().out
    assert code == 0 and text.startswith("greenhouse sensor node temperature: 3 readings")


def test_query_failures_exit_non_zero_with_one_line(capsys, config_file):
    code, out = run_json(capsys, "--config", config_file, "edge", "query", "kitchen", "classify", "--json")
    assert code == 1 and out == {"ok": False, "error": out["error"]} and "no registered device" in out["error"]
    code, out = run_json(
        capsys, "--config", config_file, "edge", "query", "garden-cam", "classify", "--param", "top_k=99", "--json"
    )
    assert code == 1 and not out["ok"] and "bad_param" in out["error"]
    code = main(["--config", config_file, "edge", "query", "garden-cam", "teleport"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().startswith("error: unknown capability") and err.count("\n") == 1


def test_simulate_starts_a_broker_and_three_devices(tmp_path, monkeypatch):
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[edge]\nport = {port}\nrequest_timeout_s = 10.0\n")
    monkeypatch.delenv("POLYMODAL_MQTT_PASSWORD", raising=False)  # the CLI reads the simulator's credentials
    # stderr goes to a file: a pipe nobody reads fills up (device logs over a minute) and blocks the
    # simulator's writes, so it could not even shut down on Ctrl-C.
    err_file = open(tmp_path / "simulate.err", "w+")
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "--config",
            str(cfg),
            "edge",
            "simulate",
            "--devices",
            "3",
            "--fault",
            "temperature=stuck",
            "--duration",
            "120",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=err_file,
        text=True,
    )
    try:
        started = _read_json_object(sim)
        assert started["ok"] and [d["id"] for d in started["devices"]] == ["garden-cam", "greenhouse", "front-door"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, "-m", "orchestrator.cli", "--config", str(cfg), "edge", "devices", "--json"],
                capture_output=True,
                text=True,
            )
            rows = json.loads(out.stdout)["devices"] if out.returncode == 0 else []
            if len(rows) == 3 and all(r["online"] for r in rows):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the simulated devices did not come online")
        # the injected fault shows once the stuck readings fill the window (one reading a second)
        q = None
        for _ in range(3):
            q = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "orchestrator.cli",
                    "--config",
                    str(cfg),
                    "edge",
                    "query",
                    "greenhouse",
                    "sensor_status",
                    "--param",
                    "sensor=temperature",
                    "--json",
                ],
                capture_output=True,
                text=True,
            )
            assert q.returncode == 0, q.stderr
            if json.loads(q.stdout)["result"]["data"]["status"] == "stuck":
                break
            time.sleep(8)
        assert json.loads(q.stdout)["result"]["data"]["status"] == "stuck"
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(90)
        err_file.close()
    assert sim.returncode == 0, (tmp_path / "simulate.err").read_text()[-2000:]


def _read_json_object(proc) -> dict:
    # `emit` pretty-prints: read lines up to the object's closing brace
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("simulate exited early (its stderr is in simulate.err)")
        lines.append(line)
        if line.rstrip("\n") == "}":
            return json.loads("".join(lines))
