import numpy as np
import pytest
from PIL import Image

from edge.camera import CameraSource, load_folder
from edge.fleet import DeviceSpec, build_device, fleet_specs
from edge.mqtt import BrokerSettings


def test_camera_cycles_a_folder_and_can_be_pinned(tmp_path):
    for name, value in (("b_red", (255, 0, 0)), ("a_green", (0, 255, 0))):
        Image.new("RGB", (40, 30), value).save(tmp_path / f"{name}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    photos = load_folder(tmp_path)
    assert [n for n, _ in photos] == ["a_green", "b_red"] and photos[0][1].shape == (30, 40, 3)
    cam = CameraSource(photos, interval_s=1000)
    assert cam.current()[0] == "a_green"
    cam.show("b_red")
    assert cam.current()[0] == "b_red" and np.all(cam.current()[1][0, 0] == (255, 0, 0))
    with pytest.raises(ValueError):
        cam.show("blue")


def test_a_camera_without_photos_still_has_a_frame():
    assert CameraSource([]).current()[0] == "grey"


def test_fleet_specs_cycle_roles_with_unique_ids():
    specs = fleet_specs(7)
    assert [s.role for s in specs[:4]] == ["camera", "greenhouse", "door", "camera"]
    assert len({s.id for s in specs}) == 7 and specs[3].id == "garden-cam-2"


def test_a_device_built_on_a_photo_folder_uses_it(tmp_path):
    Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / "porch.jpg")
    dev = build_device(DeviceSpec("door", "front-door", photo_dir=str(tmp_path)), BrokerSettings())
    assert dev.camera.names == ["porch"]
    assert dev.agent.handle(b'{"capability": "detect_faces"}')["data"]["count"] == 0
    with pytest.raises(FileNotFoundError):
        build_device(DeviceSpec("camera", "garden-cam", photo_dir=str(tmp_path / "empty")), BrokerSettings())
