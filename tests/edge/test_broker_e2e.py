"""End to end through a real mosquitto: simulated devices with real models, MQTT v5 request/reply,
retained announcements, last wills, keepalive, ACLs, and many concurrent requests."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge.broker import MosquittoBroker
from edge.client import MqttDeviceClient
from edge.errors import BrokerUnavailable, DeviceOfflineError, DeviceReplyError
from edge.fleet import DeviceSpec, SimulatedFleet
from edge.mqtt import BrokerSettings, connect_blocking, make_client
from edge.protocol import encode

pytestmark = pytest.mark.broker
CAT_CLASSES = set(range(281, 286))


def test_a_new_client_sees_every_announced_device(client, fleet):
    devices = {d.id: d for d in client.devices()}
    assert set(fleet.ids) <= set(devices)
    cam = devices["garden-cam"]
    assert cam.online and cam.kind == "camera" and "classify" in cam.capabilities
    assert cam.models["efficientnet_lite0_int8"]["inputs"][0]["shape"] == [1, 224, 224, 3]
    assert devices["front-door"].model_for("detect_faces") == "blazeface_short_range"


def test_cat_photo_classified_on_the_camera_has_a_cat_in_the_top_3(client, fleet):
    fleet.device("garden-cam").camera.show("chelsea")
    before = time.time()
    reply = client.request("garden camera", "classify", {"top_k": 3}, timeout=10)
    assert reply.device == "garden-cam" and reply.model == "efficientnet_lite0_int8"
    assert reply.data["source"] == "chelsea"
    assert CAT_CLASSES & {x["index"] for x in reply.data["labels"]}
    assert reply.timestamp >= before - 1 and reply.inference_ms > 0
    assert reply.round_trip_ms >= reply.device_ms >= reply.inference_ms


def test_stuck_sensor_reports_stuck(client, fleet):
    sensor = fleet.device("greenhouse").sensors["soil_moisture"]
    sensor.inject("stuck")
    sensor.advance(64)
    try:
        reply = client.request("greenhouse", "sensor_status", {"sensor": "soil_moisture"}, timeout=10)
        assert reply.data["status"] == "stuck", reply.data
    finally:
        sensor.inject("")


def test_device_errors_come_back_as_replies(client, fleet):
    with pytest.raises(DeviceReplyError) as err:
        client.request("garden-cam", "detect_faces", timeout=10)
    assert err.value.code == "unknown_capability"
    # garbage and requests with nowhere to reply to are dropped, not fatal
    client._client.publish("polymodal/devices/garden-cam/request", b"\x00garbage", qos=1).wait_for_publish(5)
    # and the device still serves afterwards
    assert client.request("garden-cam", "snapshot", {"max_side": 32}, timeout=10).data["format"] == "jpeg"


def _spec(device_id: str) -> DeviceSpec:
    return DeviceSpec(role="greenhouse", id=device_id, name=device_id)


def _wait_online(client: MqttDeviceClient, device_id: str, timeout: float = 60) -> None:
    assert client.registry.wait_for(lambda r: (d := r.get(device_id)) is not None and d.online, timeout), (
        f"{device_id} never came online"
    )


def test_killed_device_turns_offline_within_the_keepalive_window(broker, client):
    keepalive = 2
    fleet = SimulatedFleet(
        [_spec("spare")], broker.host, broker.port, broker.passwords, keepalive=keepalive, mode="process"
    ).start()
    try:
        _wait_online(client, "spare")
        assert client.request("spare", "readings", {"n": 3}, timeout=10).device == "spare"
        t0 = time.monotonic()
        fleet.kill("spare")  # SIGKILL: no DISCONNECT, so the broker publishes the last will
        assert client.registry.wait_for(lambda r: not r.get("spare").online, 1.5 * keepalive + 1)
        assert time.monotonic() - t0 <= 1.5 * keepalive + 1
        assert client.registry.get("spare").offline_reason == "lost"
        with pytest.raises(DeviceOfflineError, match="spare is offline"):
            client.request("spare", "readings", timeout=5)
    finally:
        fleet.stop()


def test_frozen_device_is_declared_offline_by_the_keepalive(broker, client):
    keepalive = 2
    fleet = SimulatedFleet(
        [_spec("frozen")], broker.host, broker.port, broker.passwords, keepalive=keepalive, mode="process"
    ).start()
    proc = fleet.processes["frozen"]
    try:
        _wait_online(client, "frozen")
        os.kill(proc.pid, signal.SIGSTOP)  # socket stays open, pings stop: only the keepalive can tell
        # mosquitto drops a client 1.5 keepalives after its last packet, checking every few seconds
        assert client.registry.wait_for(lambda r: not r.get("frozen").online, 1.5 * keepalive + 6)
        assert client.registry.get("frozen").offline_reason == "lost"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        fleet.stop()


def test_graceful_stop_says_offline_with_a_reason(broker, client):
    fleet = SimulatedFleet([_spec("spare")], broker.host, broker.port, broker.passwords).start()
    _wait_online(client, "spare")
    fleet.stop()
    assert client.registry.wait_for(lambda r: not r.get("spare").online, 5)
    assert client.registry.get("spare").offline_reason == "shutdown"


def test_ten_devices_twenty_concurrent_requests_each_all_matched():
    specs = [DeviceSpec(role="greenhouse", id=f"node-{i}", name=f"node {i}", seed=i) for i in range(10)]
    with MosquittoBroker(devices=[s.id for s in specs]) as broker:
        with SimulatedFleet(specs, broker.host, broker.port, broker.passwords):
            with MqttDeviceClient(broker.settings()) as client:
                assert client.registry.wait_for(lambda r: all((d := r.get(s.id)) and d.online for s in specs), 30)
                jobs = [(s.id, n) for s in specs for n in range(1, 21)]  # n readings: each answer is distinct
                with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                    replies = list(
                        pool.map(lambda job: client.request(job[0], "readings", {"n": job[1]}, timeout=30), jobs)
                    )
    assert len(replies) == 200
    for (device, n), reply in zip(jobs, replies):
        assert reply.device == device and len(reply.data["values"]) == n


# -- security -------------------------------------------------------------------------------


def _raw_client(broker, user: str, password: str | None = None):
    settings = BrokerSettings(broker.host, broker.port, user, broker.password(user) if password is None else password)
    c = make_client(f"{user}-raw", settings)
    connect_blocking(c, settings, 10)
    return c


def test_wrong_password_and_anonymous_clients_are_refused(broker):
    with pytest.raises(BrokerUnavailable, match="refused"):
        _raw_client(broker, "garden-cam", "not-the-password")
    with pytest.raises(BrokerUnavailable, match="refused"):
        MqttDeviceClient(BrokerSettings(broker.host, broker.port)).connect(5)


def test_a_device_cannot_read_others_requests_or_publish_as_another_device(broker, client, fleet):
    intruder = _raw_client(broker, "intruder")
    try:
        received: list[str] = []
        own = threading.Event()
        subscribed = threading.Event()

        def on_message(c, u, msg):
            received.append(msg.topic)
            if msg.topic.endswith("/intruder/request"):
                own.set()

        intruder.on_message = on_message
        intruder.on_subscribe = lambda c, u, mid, rcs, props: subscribed.set()
        intruder.subscribe([("polymodal/devices/garden-cam/request", 1), ("polymodal/devices/intruder/request", 1)])
        assert subscribed.wait(5)
        assert client.request("garden-cam", "snapshot", {"max_side": 32}, timeout=10).device == "garden-cam"
        # a message to the intruder's own topic, sent after the camera's request, is a barrier:
        # once it has arrived, anything the broker would have leaked has arrived too
        client._client.publish("polymodal/devices/intruder/request", b"{}", qos=1)
        assert own.wait(5)
        assert received == ["polymodal/devices/intruder/request"]
        # impersonation: the broker drops it, the camera's real announcement and status stay
        info = intruder.publish(
            "polymodal/devices/garden-cam/announce", encode({"name": "evil camera", "ts": 1.0}), qos=1, retain=True
        )
        info.wait_for_publish(5)
        status = intruder.publish(
            "polymodal/devices/garden-cam/status", encode({"state": "offline"}), qos=1, retain=True
        )
        status.wait_for_publish(5)
    finally:
        intruder.disconnect()
        intruder.loop_stop()
    with MqttDeviceClient(broker.settings()) as fresh:
        cam = fresh.registry.get("garden-cam")
        assert cam.name == "garden camera" and cam.online
    # the camera still answers: its requests were not stolen
    assert client.request("garden-cam", "snapshot", {"max_side": 32}, timeout=10).device == "garden-cam"


def test_demo_fleet_gives_a_broker_and_devices_in_one_line(broker):  # `broker`: skips without mosquitto
    from edge.fleet import demo_fleet

    with demo_fleet(2) as (demo_broker, fleet):
        with MqttDeviceClient(demo_broker.settings()) as c:
            assert {d.id for d in c.devices()} == {"garden-cam", "greenhouse"} == set(fleet.ids)
            assert c.request("greenhouse", "readings", {"n": 1}, timeout=10).device == "greenhouse"
    assert not demo_broker.running
