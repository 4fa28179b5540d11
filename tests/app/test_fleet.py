"""The app's fleet (`orchestrator.ui.fleet.FleetService`) over the shared start sequence
(`orchestrator.fleet`): one-line errors without a usable broker, the [edge] TLS files reaching the
broker, the client shared with the edge tool, and a real start/stop against mosquitto."""

from __future__ import annotations

import json
import socket

import pytest

from edge.broker import port_open
from orchestrator.fleet import credentials_file, start_broker, start_fleet
from orchestrator.ui import AppServices, FleetService, device_rows
from polymodal.errors import DeviceError
from tests.edge.conftest import need_mosquitto


@pytest.fixture
def listener(config):
    """Something listening on the configured broker port (not a broker)."""
    with socket.socket() as s:
        s.bind((config.edge.host, config.edge.port))
        s.listen()
        yield s


def test_a_listening_broker_without_credentials_is_one_line(config, listener):
    fleet = FleetService(config)
    with pytest.raises(DeviceError, match="has no device passwords: start it with 'polymodal edge broker'"):
        fleet.start()
    assert not fleet.running


def test_a_running_broker_without_the_devices_users_says_how_to_restart(config, listener):
    path = credentials_file(config)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"users": {"orchestrator": "pw", "garden-cam": "pw"}}))
    restart = r"no users for greenhouse, front-door: .*'polymodal edge broker --devices 3'"
    with pytest.raises(DeviceError, match=restart):
        FleetService(config).start()


def test_the_broker_gets_the_edge_tls_files(config, monkeypatch):
    from edge.broker import MosquittoBroker

    monkeypatch.setattr(MosquittoBroker, "start", lambda self: self)  # no mosquitto needed to see its settings
    config.edge.tls_cert, config.edge.tls_key, config.edge.tls_ca = "/tls/server.crt", "/tls/server.key", "/tls/ca.crt"
    broker = start_broker(config, ["garden-cam"])
    assert broker.tls == ("/tls/server.crt", "/tls/server.key", "/tls/ca.crt")
    assert json.loads(credentials_file(config).read_text())["port"] == config.edge.port


def test_the_fleet_shares_the_edge_tools_client(config):
    from tools.testing import FakeEdgeQueryTool

    tool = FakeEdgeQueryTool()
    tool.client = object()
    tools = {}
    services = AppServices(config, fleet=FleetService(config, lambda: tools))
    assert services.fleet.client(connect=False) is None  # no agent built: nothing to share, nothing connected
    tools[tool.name] = tool
    assert services.fleet.client() is tool.client


def test_services_hand_the_fleet_the_built_agents_tools(config):
    class Agent:
        tools = {"edge_query": object()}

    services = AppServices(config)
    assert services.built_agent() is None and services.agent_tools() == {}  # asking does not build the agent
    services = AppServices(config, Agent())
    assert services.fleet.agent_tools() is Agent.tools


@pytest.mark.broker
def test_start_and_stop_with_a_broker_started_by_the_app(config):
    need_mosquitto()
    services = AppServices(config)
    where = f"{config.edge.host}:{config.edge.port}"
    try:
        assert services.fleet.start() == f"3 simulated devices started via {where} (broker started by the app)"
        assert services.fleet.start() == "the simulated fleet is already running"
        rows, line = device_rows(services)
        assert line == "3 of 3 device(s) online"
        assert sorted(r[0] for r in rows) == ["front-door", "garden-cam", "greenhouse"]
        assert credentials_file(config).exists()
    finally:
        assert services.fleet.stop() == "the simulated fleet is stopped"
    assert not port_open(config.edge.host, config.edge.port)  # the app's broker goes with its fleet
    assert services.fleet.stop() == "no simulated fleet was running"


@pytest.mark.broker
def test_a_running_broker_is_reused_with_its_credentials(config):
    from edge.fleet import fleet_specs

    need_mosquitto()
    specs = fleet_specs(3)
    broker = start_broker(config, [s.id for s in specs])  # what 'polymodal edge broker' runs
    try:
        local = start_fleet(config, specs)
        try:
            assert local.broker is None and local.where == f"{config.edge.host}:{config.edge.port}"
            assert sorted(local.fleet.devices) == ["front-door", "garden-cam", "greenhouse"]
        finally:
            local.stop()
        assert port_open(config.edge.host, config.edge.port)  # not ours to stop
    finally:
        broker.stop()
