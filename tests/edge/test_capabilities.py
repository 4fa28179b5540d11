"""Capabilities on the device with the real LiteRT models, no broker: the agent's `handle()` is
what answers each MQTT request."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from edge.agent import DeviceAgent
from edge.camera import CameraSource
from edge.capabilities import Classify, DetectFaces, Readings, SensorStatus, Snapshot
from edge.faces import FaceDetector
from edge.models import FACE_MODEL, load_model
from edge.mqtt import BrokerSettings
from edge.protocol import MAX_REQUEST_BYTES, encode
from edge.sensors import GREENHOUSE, WINDOW, SimulatedSensor

skimage_data = pytest.importorskip("skimage.data")
CAT_CLASSES = set(range(281, 286))  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def camera():
    return CameraSource(
        [
            ("chelsea", skimage_data.chelsea()),
            ("astronaut", skimage_data.astronaut()),
            ("coffee", skimage_data.coffee()),
        ]
    )


@pytest.fixture(scope="module")
def classifier():
    return load_model("efficientnet_lite0_int8", threads=2)


@pytest.fixture(scope="module")
def sensors():
    return {s.name: SimulatedSensor(s, seed=i) for i, s in enumerate(GREENHOUSE)}


@pytest.fixture(scope="module")
def agent(camera, classifier, sensors):
    caps = [
        Classify(classifier, camera),
        DetectFaces(FaceDetector(load_model(FACE_MODEL)), camera),
        Snapshot(camera),
        SensorStatus(load_model("sensor_anomaly_int8"), sensors),
        Readings(sensors),
    ]
    return DeviceAgent("test-dev", caps, BrokerSettings())


def ask(agent, capability, **params):
    return agent.handle(encode({"capability": capability, "params": params}))


def b64_image(arr, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def test_cat_photo_has_a_cat_class_in_the_top_3(agent, camera):
    camera.show("chelsea")
    reply = ask(agent, "classify", top_k=3)
    assert reply["ok"], reply
    assert reply["model"] == "efficientnet_lite0_int8" and reply["inference_ms"] > 0
    indices = [x["index"] for x in reply["data"]["labels"]]
    assert len(indices) == 3 and CAT_CLASSES & set(indices)
    assert reply["data"]["labels"][0]["index"] in CAT_CLASSES  # and it is the best guess


def test_classify_an_inline_image_and_espresso(agent):
    reply = ask(agent, "classify", top_k=1, image=b64_image(skimage_data.coffee(), "JPEG"))
    assert reply["ok"] and reply["data"]["source"] == "inline"
    assert reply["data"]["labels"][0]["label"] == "espresso"


def test_faces_found_on_the_astronaut_and_not_on_the_cat(agent, camera):
    camera.show("astronaut")
    reply = ask(agent, "detect_faces")
    assert reply["ok"] and reply["data"]["count"] == 1
    x0, y0, x1, y1 = reply["data"]["faces"][0]["box"]
    # Eileen Collins' face sits around x 180-270, y 80-175 in the 512x512 photo
    assert 150 < x0 < 200 and 250 < x1 < 300 and 60 < y0 < 110 and 150 < y1 < 200
    camera.show("chelsea")
    assert ask(agent, "detect_faces")["data"]["count"] == 0


@pytest.mark.parametrize("fault", ["stuck", "drift", "spike"])
def test_sensor_status_names_the_injected_fault(fault):
    sensors = {"temperature": SimulatedSensor(GREENHOUSE[0], seed=7)}
    cap = SensorStatus(load_model("sensor_anomaly_int8"), sensors)
    data, _ = cap({})
    assert data["status"] == "normal"
    sensors["temperature"].inject(fault)
    sensors["temperature"].advance(2 if fault == "spike" else 40)
    data, _ = cap({"sensor": "temperature"})
    assert data["status"] == fault, data
    assert data["confidence"] > 0.5


def test_dropout_is_reported_by_rule():
    sensors = {"humidity": SimulatedSensor(GREENHOUSE[1], seed=2)}
    cap = SensorStatus(load_model("sensor_anomaly_int8"), sensors)
    sensors["humidity"].inject("dropout")
    sensors["humidity"].advance(WINDOW)
    data, ms = cap({"window": WINDOW})
    assert data["status"] == "dropout" and data["missing_fraction"] > 0.2 and ms == 0.0


def test_snapshot_is_a_small_jpeg_and_readings_are_recent(agent, camera):
    camera.show("coffee")
    snap = ask(agent, "snapshot", max_side=64)["data"]
    img = Image.open(io.BytesIO(base64.b64decode(snap["image_b64"])))
    assert img.format == "JPEG" and max(img.size) == 64 and snap["source"] == "coffee"
    r = ask(agent, "readings", sensor="humidity", n=7)
    assert r["ok"] and len(r["data"]["values"]) == 7 and r["data"]["unit"] == "%"


@pytest.mark.parametrize(
    "capability, params, code",
    [
        ("fly", {}, "unknown_capability"),
        ("classify", {"top_k": 0}, "bad_param"),
        ("classify", {"top_k": "three"}, "bad_param"),
        ("classify", {"colour": "red"}, "bad_param"),
        ("classify", {"image": "%%% not base64"}, "bad_image"),
        ("classify", {"image": base64.b64encode(b"GIF89a-not-really").decode()}, "bad_image"),
        ("detect_faces", {"min_score": 3}, "bad_param"),
        ("sensor_status", {"sensor": "pressure"}, "bad_param"),
        ("sensor_status", {"window": 10_000}, "bad_param"),
        ("readings", {"n": -1}, "bad_param"),
        ("snapshot", {"max_side": 10_000}, "bad_param"),
    ],
)
def test_bad_requests_get_error_replies_not_crashes(agent, capability, params, code):
    reply = ask(agent, capability, **params)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    assert "\n" not in reply["error"]["message"]


def test_oversized_and_huge_images_are_refused(agent):
    big = agent.handle(b'{"capability": "classify", "params": {"image": "' + b"A" * MAX_REQUEST_BYTES + b'"}}')
    assert big["error"]["code"] == "too_large"
    # a small file that declares a huge picture (decompression bomb) is refused before decoding
    huge = b64_image(np.zeros((5000, 8, 3), np.uint8))
    assert ask(agent, "classify", image=huge)["error"]["code"] == "too_large"


def test_announcement_describes_models_and_capabilities(agent):
    ann = agent.announcement()
    json.dumps(ann)  # plain JSON
    assert set(ann["capabilities"]) == {"classify", "detect_faces", "snapshot", "sensor_status", "readings"}
    spec = ann["models"]["efficientnet_lite0_int8"]
    assert spec["inputs"][0]["shape"] == [1, 224, 224, 3] and spec["inputs"][0]["dtype"] == "uint8"
    assert spec["outputs"][0]["dtype"] == "int8" and spec["labels"] == 1000
    assert ann["models"]["sensor_anomaly_int8"]["labels"] == ["normal", "spike", "drift", "stuck"]
    assert ann["capabilities"]["sensor_status"]["sensors"] == ["temperature", "humidity", "soil_moisture"]
