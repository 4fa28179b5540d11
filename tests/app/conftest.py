"""Fixtures for the app: configs in a tmp data folder, photos from scikit-image, the app served on
a free loopback port, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from polymodal.config import Config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "camera")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def config(tmp_path, monkeypatch) -> Config:
    """Defaults in a tmp data folder, with the hash embedder and the colour image encoder (no models)."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # restored after the test
    cfg = Config()
    cfg.paths.data_dir = str(tmp_path / "data")
    cfg.embedder.model = "hash"
    cfg.images.encoder = "fake"
    cfg.edge.port = free_port()  # nothing listens there unless a test starts a broker
    return cfg


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """A few real photos (scikit-image), one of them the cat (chelsea.png)."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        arr = getattr(skimage_data, name)()
        Image.fromarray(arr).convert("RGB").save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="session")
def cat_photo(tmp_path_factory, photo_folder) -> Path:
    """The cat, saved outside the library (what a user uploads)."""
    out = tmp_path_factory.mktemp("upload") / "my-cat.jpg"
    from PIL import Image

    Image.open(photo_folder / "chelsea.png").save(out, quality=92)
    return out


@pytest.fixture
def serve_app():
    """serve_app(config, agent=None) -> (url, demo): the app on a free loopback port, closed after the test."""
    from orchestrator.ui import build_app, serve

    demos = []

    def start(config: Config, agent=None, auth=None):
        demo = build_app(config, agent=agent)
        url = serve(demo, "127.0.0.1", free_port(), auth=auth, block=False, quiet=True)
        demos.append(demo)
        return url, demo

    yield start
    for demo in demos:
        demo.services.fleet.stop()
        demo.close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """One headless Chromium with a fresh profile per test module; tests open their own pages.

    Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
    thread until it stops, and later async tests (LangChain's) cannot start their own beside it."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("chromium is not installed: apt-get install chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        ctx.set_default_timeout(30_000)
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser_context):
    p = browser_context.new_page()
    yield p
    p.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/ (gitignored; CI keeps it)."""
    out = Path(__file__).resolve().parents[2] / "artifacts" / f"app-{name}.png"
    out.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    return out
