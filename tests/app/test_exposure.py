"""What the servers expose by default, checked on the running servers: the page, the broker it starts
and `polymodal serve` listen on loopback only (read from the kernel's socket table), and the page's
upload route refuses a file over [app] max_upload_mb before any handler sees it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from orchestrator.testing import fake_agent
from tests.app.conftest import free_port
from tests.orchestrator.serve.serve_procs import start_serve  # noqa: F401 - the fixture


def listening_on(port: int) -> set[ipaddress._BaseAddress]:
    """The addresses that listen on TCP `port`, from /proc/net/tcp and tcp6 (state 0A: LISTEN)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, width, 8))
            found.add(ipaddress.ip_address(raw))
    return found


def test_the_page_listens_on_loopback_only_by_default(config):
    from orchestrator.ui import build_app, serve

    assert config.app.host == "127.0.0.1"
    demo = build_app(config, agent=fake_agent())
    port = free_port()
    try:
        serve(demo, port=port, block=False, quiet=True)  # the host left to its default
        addresses = listening_on(port)
    finally:
        demo.close()
    assert addresses and all(a.is_loopback for a in addresses), addresses


def test_the_broker_the_app_starts_listens_on_loopback_only(config):
    from edge.broker import mosquitto_available
    from orchestrator.ui import FleetService

    if not mosquitto_available():
        pytest.skip("mosquitto is not installed: apt-get install mosquitto")
    fleet = FleetService(config, n_devices=1)
    try:
        fleet.start()
        assert fleet.local.broker is not None  # the app started it, with the config's defaults
        addresses = listening_on(config.edge.port)
    finally:
        fleet.stop()
    assert addresses and all(a.is_loopback for a in addresses), addresses


def test_polymodal_serve_listens_on_loopback_only_by_default(start_serve):  # noqa: F811 - the fixture
    base = start_serve()  # no --host: [serve] host
    addresses = listening_on(int(base.rsplit(":", 1)[1]))
    assert addresses and all(a.is_loopback for a in addresses), addresses


def test_the_upload_route_refuses_a_file_over_the_limit(config, serve_app):
    config.app.max_upload_mb = 1
    url, demo = serve_app(config, fake_agent())
    files_before = set(demo.services.cache.rglob("*"))
    with httpx.Client(base_url=url, timeout=60) as http:
        big = http.post("/gradio_api/upload", files={"files": ("big.md", b"x" * (2 * 2**20 + 1), "text/markdown")})
        small = http.post("/gradio_api/upload", files={"files": ("small.md", b"# ok\n", "text/markdown")})
    assert big.status_code == 413, big.text
    assert small.status_code == 200 and Path(small.json()[0]).name == "small.md"
    stored = {p.name for p in set(demo.services.cache.rglob("*")) - files_before}
    assert "big.md" not in stored  # nothing of the refused upload is kept
