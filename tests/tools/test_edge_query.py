"""The edge_query tool against a real mosquitto and simulated devices."""

from __future__ import annotations

import json

import pytest

from edge.broker import MosquittoBroker, mosquitto_available
from edge.client import MqttDeviceClient
from edge.fleet import DeviceSpec, SimulatedFleet, fleet_specs
from edge.mqtt import connect_blocking, make_client
from edge.protocol import encode
from polymodal.config import EdgeConfig
from polymodal.errors import DeviceError, DeviceOffline, DeviceTimeout, InputError
from tools.base import to_plain
from tools.edge_query import EdgeQueryResult, EdgeQueryTool

pytestmark = pytest.mark.broker
CAT_CLASSES = set(range(281, 286))


@pytest.fixture(scope="module")
def broker():
    if not mosquitto_available():
        pytest.skip("mosquitto is not installed: apt-get install mosquitto (make system-deps)")
    with MosquittoBroker(devices=[s.id for s in fleet_specs(3)] + ["ghost", "spare"]) as b:
        yield b


@pytest.fixture(scope="module")
def fleet(broker):
    with SimulatedFleet(fleet_specs(3), broker.host, broker.port, broker.passwords) as f:
        yield f


@pytest.fixture(scope="module")
def tool(broker, fleet):
    client = MqttDeviceClient(broker.settings()).connect()
    yield EdgeQueryTool(client=client, timeout_s=10)
    client.close()


def test_schema_is_derived_from_run(tool):
    spec = tool.spec()
    props = spec["parameters"]["properties"]
    assert spec["name"] == "edge_query" and spec["parameters"]["required"] == ["device", "capability"]
    assert props["capability"]["enum"] == ["classify", "detect_faces", "sensor_status", "snapshot", "readings"]
    assert "garden camera" in props["device"]["description"] and props["parameters"]["type"] == "object"
    assert tool.examples


def test_what_does_the_garden_camera_see(tool, fleet):
    fleet.device("garden-cam").camera.show("chelsea")
    r = tool({"device": "garden camera", "capability": "classify", "parameters": {"top_k": 3}})
    assert isinstance(r, EdgeQueryResult) and r.ok and r.attempts == 1
    assert (r.device, r.device_name, r.model) == ("garden-cam", "garden camera", "efficientnet_lite0_int8")
    assert r.timestamp > 0 and r.inference_ms > 0 and r.round_trip_ms >= r.device_ms
    assert CAT_CLASSES & {x["index"] for x in r.data["labels"]}
    line = r.summary()
    assert "\n" not in line and line.startswith("garden camera sees: ") and "efficientnet_lite0_int8" in line
    assert r.data["labels"][0]["label"] in line
    json.dumps(to_plain(r))


def test_greenhouse_temperature_sensor_status(tool, fleet):
    sensor = fleet.device("greenhouse").sensors["temperature"]
    sensor.inject("")
    sensor.advance(64)
    r = tool.run("greenhouse temperature sensor", "sensor_status")
    assert r.ok and r.data["sensor"] == "temperature" and r.data["status"] == "normal"
    sensor.inject("stuck")
    sensor.advance(64)
    try:
        r = tool.run("greenhouse temperature sensor", "sensor_status")
        assert r.data["status"] == "stuck" and "stuck" in r.summary()
    finally:
        sensor.inject("")
    r = tool.run("the greenhouse humidity sensor", "readings", {"n": 5})
    assert r.data["sensor"] == "humidity" and len(r.data["values"]) == 5 and "humidity" in r.summary()


def test_faces_at_the_front_door(tool):
    r = tool.run("front door", "detect_faces")
    assert r.ok and r.data["count"] == 1 and "1 face" in r.summary()


def test_unregistered_devices_and_capabilities_are_refused(tool):
    with pytest.raises(DeviceError, match="no registered device 'kitchen'"):
        tool.run("kitchen", "classify")
    with pytest.raises(DeviceError, match="garden-cam .* cannot detect_faces"):
        tool.run("garden camera", "detect_faces")
    with pytest.raises(InputError):  # the schema's enum, checked before anything is sent
        tool({"device": "garden camera", "capability": "launch_missiles"})


def test_a_device_error_is_a_result(tool):
    r = tool.run("garden camera", "classify", {"top_k": 50})
    assert r.status == "error" and "bad_param" in r.error and not r.ok
    with pytest.raises(DeviceError):
        r.raise_for_status()


def test_offline_device_gives_a_clear_result_not_an_exception(broker, tool):
    spare = SimulatedFleet(
        [DeviceSpec("greenhouse", "spare", "spare node")], broker.host, broker.port, broker.passwords
    ).start()
    assert tool.client.registry.wait_for(lambda r: (d := r.get("spare")) is not None and d.online, 30)
    assert tool.run("spare node", "readings").ok
    spare.kill("spare")
    assert tool.client.registry.wait_for(lambda r: not r.get("spare").online, 10)
    r = tool.run("spare node", "readings")
    assert r.status == "offline" and "spare is offline" in r.error and "no fresh answer" in r.summary()
    with pytest.raises(DeviceOffline):
        r.raise_for_status()


def test_a_silent_device_times_out_after_one_retry(broker, tool):
    ghost = make_client("ghost", broker.settings("ghost"))
    connect_blocking(ghost, broker.settings("ghost"), 10)
    try:
        # announced and online, but nothing serves its requests
        ghost.publish(
            "polymodal/devices/ghost/announce",
            encode({"name": "ghost cam", "capabilities": {"snapshot": {}}, "ts": 1.0}),
            qos=1,
            retain=True,
        ).wait_for_publish(5)
        ghost.publish(
            "polymodal/devices/ghost/status", encode({"state": "online", "ts": 1.0}), qos=1, retain=True
        ).wait_for_publish(5)
        assert tool.client.registry.wait_for(lambda r: (d := r.get("ghost")) is not None and d.online, 10)
        quick = EdgeQueryTool(client=tool.client, timeout_s=0.3, retries=1)
        r = quick.run("ghost cam", "snapshot")
        assert r.status == "timeout" and r.attempts == 2 and "tried 2 times" in r.error
        with pytest.raises(DeviceTimeout):
            r.raise_for_status()
    finally:
        ghost.publish("polymodal/devices/ghost/announce", b"", qos=1, retain=True).wait_for_publish(5)
        ghost.disconnect()
        ghost.loop_stop()


def test_tool_builds_its_client_from_config(broker, fleet, monkeypatch):
    monkeypatch.setenv("TEST_MQTT_PASSWORD", broker.password("orchestrator"))
    cfg = EdgeConfig(
        host=broker.host,
        port=broker.port,
        username="orchestrator",
        password_env="TEST_MQTT_PASSWORD",
        request_timeout_s=10,
    )
    t = EdgeQueryTool(config=cfg)
    try:
        assert t.client is None  # nothing connects before first use
        assert t.run("greenhouse", "readings", {"n": 2}).ok
    finally:
        t.client.close()
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "wrong")
    with pytest.raises(DeviceError, match="refused"):
        EdgeQueryTool(config=cfg).run("greenhouse", "readings")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("what does the garden camera see?", ("garden-cam", "classify", {})),
        (
            "is the greenhouse temperature sensor working normally?",
            ("greenhouse", "sensor_status", {"sensor": "temperature"}),
        ),
        ("is somebody standing at the front door?", ("front-door", "detect_faces", {})),
        (
            "show me the last 10 humidity readings from the greenhouse",
            ("greenhouse", "readings", {"sensor": "humidity", "n": 10}),
        ),
        ("take a snapshot with the garden camera", ("garden-cam", "snapshot", {})),
        ("front door", ("front-door", "classify", {})),
        ("花园摄像头看到了什么?", ("garden-cam", "classify", {})),
        ("温室的温度传感器正常吗?", ("greenhouse", "sensor_status", {"sensor": "temperature"})),
        ("is the greenhouse soil ok", ("greenhouse", "sensor_status", {"sensor": "soil_moisture"})),
        ("门口有人吗?", ("front-door", "detect_faces", {})),
    ],
)
def test_route_args_fills_device_and_capability_from_plain_words(tool, text, expected):
    args = tool.route_args(text)
    assert (args["device"], args["capability"], args["parameters"]) == expected
    assert tool(args).ok  # and the arguments are valid for the tool


def test_route_args_declines_when_no_device_is_named(tool):
    assert tool.route_args("what is the capital of France?") is None
    assert tool.route_args("what does the camera see", image="/tmp/x.png") is None


def test_from_config_takes_the_whole_config(broker, monkeypatch):
    from polymodal.config import Config

    cfg = Config()
    cfg.edge.port = broker.port
    t = EdgeQueryTool.from_config(cfg)
    assert t.config.port == broker.port and t.credentials_file.name == "credentials.json" and t.client is None
