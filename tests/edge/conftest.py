"""Fixtures for edge tests: a real mosquitto on a free loopback port (generated users and ACLs),
a simulated fleet of three devices on it, and an orchestrator client."""

from __future__ import annotations

import pytest

from edge.broker import MosquittoBroker, mosquitto_available
from edge.client import MqttDeviceClient
from edge.fleet import SimulatedFleet, fleet_specs

# users for ACL, timeout and expiry tests; the fleet runs no agent for them
EXTRA_DEVICES = ["ghost", "intruder", "spare", "frozen", "paused", "late"]


def need_mosquitto() -> None:
    if not mosquitto_available():  # under CI the skip is a failure (tests/conftest.py)
        pytest.skip("mosquitto is not installed: apt-get install mosquitto (make system-deps)")


@pytest.fixture(scope="session")
def broker():
    need_mosquitto()
    ids = [s.id for s in fleet_specs(3)] + EXTRA_DEVICES
    with MosquittoBroker(devices=ids) as b:
        yield b


@pytest.fixture(scope="session")
def fleet(broker):
    f = SimulatedFleet(fleet_specs(3), broker.host, broker.port, broker.passwords)
    f.start()
    yield f
    f.stop()


@pytest.fixture
def client(broker, fleet):
    with MqttDeviceClient(broker.settings("orchestrator")) as c:
        yield c
