import threading
import time

import pytest

from edge.errors import UnknownDevice
from edge.registry import DeviceRegistry


@pytest.fixture
def registry():
    r = DeviceRegistry()
    r.on_announce(
        "garden-cam",
        {
            "name": "garden camera",
            "aliases": ["backyard camera"],
            "capabilities": {"classify": {"model": "m"}},
            "ts": 1.0,
        },
    )
    r.on_announce(
        "greenhouse", {"name": "greenhouse sensor node", "aliases": ["greenhouse temperature sensor"], "ts": 1.0}
    )
    r.on_announce("front-door", {"name": "front door unit", "aliases": ["doorbell"], "ts": 1.0})
    r.on_status("garden-cam", {"state": "online", "ts": 5.0})
    return r


@pytest.mark.parametrize(
    "name, expected",
    [
        ("garden-cam", "garden-cam"),
        ("Garden Camera", "garden-cam"),
        ("backyard camera", "garden-cam"),
        ("greenhouse temperature sensor", "greenhouse"),
        ("doorbell", "front-door"),
        ("front door", "front-door"),
        ("garden", "garden-cam"),
        ("front_door", "front-door"),
        ("the greenhouse humidity sensor", "greenhouse"),
        ("what the doorbell sees", "front-door"),
    ],
)
def test_resolve_by_id_name_alias_or_unique_part(registry, name, expected):
    assert registry.resolve(name).id == expected


def test_unknown_and_ambiguous_names_are_refused(registry):
    with pytest.raises(UnknownDevice, match="known devices: front-door, garden-cam, greenhouse"):
        registry.resolve("kitchen")
    registry.on_announce("garden-cam-2", {"name": "garden camera 2", "ts": 1.0})
    with pytest.raises(UnknownDevice, match="ambiguous"):
        registry.resolve("camera")
    assert registry.resolve("garden camera").id == "garden-cam"  # exact match wins


def test_status_tracks_online_last_seen_and_reason(registry):
    cam = registry.get("garden-cam")
    assert cam.online and cam.last_seen == 5.0 and cam.model_for("classify") == "m"
    registry.on_status("garden-cam", {"state": "offline", "reason": "lost", "ts": None})
    cam = registry.get("garden-cam")
    assert not cam.online and cam.offline_reason == "lost" and cam.last_seen == 5.0
    registry.on_announce("garden-cam", {})  # a cleared retained announcement removes the device
    assert registry.get("garden-cam") is None


def test_status_without_announcement_is_not_a_device(registry):
    registry.on_status("stranger", {"state": "online"})
    assert "stranger" not in [d.id for d in registry.devices()]


def test_wait_for_wakes_on_update(registry):
    threading.Timer(0.1, registry.on_status, ("front-door", {"state": "online", "ts": time.time()})).start()
    assert registry.wait_for(lambda r: r.get("front-door").online, timeout=5)
    assert not registry.wait_for(lambda r: r.get("greenhouse").online, timeout=0.05)
