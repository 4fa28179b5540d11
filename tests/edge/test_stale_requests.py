"""A request expires when the orchestrator stops waiting: a device that was busy, paused or away
when it arrived never runs it and answers nothing (real mosquitto, MQTT v5 message expiry)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from edge.agent import DeviceAgent
from edge.capabilities import Capability
from edge.client import MqttDeviceClient
from edge.errors import DeviceTimeoutError
from edge.mqtt import make_client
from edge.protocol import device_topic, encode, ok_reply

pytestmark = pytest.mark.broker


class Gate(Capability):
    """Records every run; holds while `open` is clear."""

    name = "gate"
    model = "none"

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.runs: list[str] = []

    def __call__(self, params: dict) -> tuple[dict, float]:
        self.runs.append(params["id"])
        self.open.wait(30)
        return {"id": params["id"]}, 0.0


@pytest.fixture
def orchestrator(broker):
    with MqttDeviceClient(broker.settings("orchestrator")) as c:
        yield c


@pytest.fixture
def device(broker, orchestrator):
    gate = Gate()
    agent = DeviceAgent("paused", [gate], broker.settings("paused")).start()
    replies: list[dict] = []
    send = agent._reply
    agent._reply = lambda topic, corr, body: (replies.append(body), send(topic, corr, body))
    try:
        _wait_online(orchestrator, "paused")
        yield agent, gate, replies
    finally:
        gate.open.set()
        agent.stop()


def _wait_online(client: MqttDeviceClient, device_id: str) -> None:
    assert client.registry.wait_for(lambda r: (d := r.get(device_id)) is not None and d.online, 10)


def _answered(replies: list[dict]) -> list[str]:
    return [r["data"]["id"] for r in replies if r.get("ok")]


def test_a_request_queued_behind_a_busy_device_past_its_timeout_is_not_run(orchestrator, device):
    agent, gate, replies = device
    gate.open.clear()  # the device is busy with the first request
    for request_id, timeout in (("running", 3), ("queued", 1)):  # "running" has time to start, then holds
        with pytest.raises(DeviceTimeoutError):
            orchestrator.request("paused", "gate", {"id": request_id}, timeout=timeout)
    gate.open.set()
    assert orchestrator.request("paused", "gate", {"id": "fresh"}, timeout=10).data == {"id": "fresh"}
    # one worker, in order: "queued" came off the queue before "fresh" ran
    assert gate.runs == ["running", "fresh"] and agent.dropped == 1
    assert _answered(replies) == ["running", "fresh"]  # "running" started in time; its late answer is ignored


def test_a_request_read_after_a_paused_network_loop_is_not_run(orchestrator, device):
    agent, gate, replies = device
    agent._client.loop_stop()  # the device stops reading its socket (a paused process, a stalled link)
    try:
        with pytest.raises(DeviceTimeoutError):
            orchestrator.request("paused", "gate", {"id": "stale"}, timeout=1)
    finally:
        agent._client.loop_start()  # the broker had delivered it: it waits in the socket
    assert orchestrator.request("paused", "gate", {"id": "fresh"}, timeout=10).data == {"id": "fresh"}
    assert gate.runs == ["fresh"] and agent.dropped == 1 and _answered(replies) == ["fresh"]


def _session_client(broker, on_message, clean_start: bool):
    """The device `late` with a persistent session: the broker queues its requests while it is away."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    settings = broker.settings("late")
    client = make_client("late-session", settings)
    client.on_message = on_message
    ready = threading.Event()
    client.on_connect = lambda c, u, flags, rc, p: ready.set()
    client.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    client.connect(settings.host, settings.port, keepalive=10, clean_start=clean_start, properties=props)
    client.loop_start()
    assert ready.wait(10)
    if clean_start:
        ready.clear()
        client.subscribe(device_topic("polymodal", "late", "request"), qos=1)
        assert ready.wait(10)
    return client


def test_the_broker_drops_a_request_that_expired_while_the_device_was_away(broker, orchestrator):
    received: list[str] = []

    def on_message(c, userdata, msg):
        request_id = json.loads(msg.payload)["params"]["id"]
        received.append(request_id)
        reply = ok_reply("late", "readings", "none", {"id": request_id}, 0.0, 0.0)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = msg.properties.CorrelationData
        c.publish(msg.properties.ResponseTopic, encode(reply), qos=1, properties=props)

    device = _session_client(broker, on_message, clean_start=True)
    device.publish(device_topic("polymodal", "late", "announce"), encode({"id": "late", "ts": 1.0}), 1, True)
    device.publish(device_topic("polymodal", "late", "status"), encode({"state": "online"}), 1, True).wait_for_publish(
        5
    )
    _wait_online(orchestrator, "late")
    device.disconnect()  # away, without a last will: the orchestrator still sees it online
    device.loop_stop()
    try:
        with pytest.raises(DeviceTimeoutError):
            orchestrator.request("late", "readings", {"id": "stale"}, timeout=1)
        time.sleep(2.5)  # past the stale request's expiry (whole seconds on the broker's clock)
        answers: list = []
        waiter = threading.Thread(
            target=lambda: answers.append(orchestrator.request("late", "readings", {"id": "fresh"}, timeout=20))
        )
        waiter.start()
        device = _session_client(broker, on_message, clean_start=False)  # back: the session delivers its queue
        waiter.join(30)
        assert [a.data for a in answers] == [{"id": "fresh"}]
        assert received == ["fresh"]
    finally:
        if device.is_connected():  # forget the device
            device.publish(device_topic("polymodal", "late", "announce"), b"", 1, True)
            device.publish(device_topic("polymodal", "late", "status"), b"", 1, True).wait_for_publish(5)
        device.disconnect()
        device.loop_stop()
