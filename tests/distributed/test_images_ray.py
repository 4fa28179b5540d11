"""Photo indexing on Ray stores what one process stores (rows, tags, signals, thumbnails, vectors)
and resumes incrementally. Runs on an in-process and a two-node cluster (conftest.py)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PIL import Image

from indexes.distributed.images import RayImageRunner
from indexes.images import ImageIndex

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for i in range(30):
        folder = root / ("2021-07 beach" if i % 3 == 0 else "home")
        folder.mkdir(exist_ok=True)
        rgb = tuple(int(x) for x in rng.integers(0, 255, 3))
        Image.new("RGB", (320 + i, 240), rgb).save(folder / f"img-{i:02d}.jpg", quality=90)
    (root / "home" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def _rows(folder):
    c = sqlite3.connect(folder / "index.sqlite")
    images = sorted(c.execute("SELECT path, folder, sha256, size, width, height, format, thumbnail FROM images"))
    tags = sorted(
        c.execute(
            "SELECT i.path, t.tag, round(t.score, 5), t.source FROM image_tags t JOIN images i ON i.id = t.image_id"
        )
    )
    return images, tags


def test_ray_image_indexing_equals_one_process(ray_env, photos, tmp_path):
    with ImageIndex.open(tmp_path / "one", "fake") as idx:
        single = idx.index_folder(photos, batch_size=4)
    with ImageIndex.open(tmp_path / "ray", "fake") as idx:
        report = idx.index_folder(photos, batch_size=4, runner=RayImageRunner(ray_env.address, actors=2))
        hits = [(h.path, round(h.score, 5)) for h in idx.search("a red photo", k=5)]
        again = idx.index_folder(photos, batch_size=4, runner=RayImageRunner(ray_env.address, actors=2))
    assert (report.added, len(report.skipped)) == (single.added, len(single.skipped)) == (30, 1)
    assert _rows(tmp_path / "one") == _rows(tmp_path / "ray")
    with (
        ImageIndex.open(tmp_path / "one", read_only=True) as one,
        ImageIndex.open(tmp_path / "ray", read_only=True) as ray_idx,
    ):
        assert hits == [(h.path, round(h.score, 5)) for h in one.search("a red photo", k=5)]
        assert one.signal_info() == ray_idx.signal_info()
    assert (again.added, again.unchanged) == (0, 30)
    thumbs = sorted(p.name for p in (tmp_path / "ray" / "thumbs").glob("*/*.jpg"))
    assert thumbs == sorted(p.name for p in (tmp_path / "one" / "thumbs").glob("*/*.jpg")) and len(thumbs) == 30


def test_the_images_cli_indexes_on_ray(ray_env, photos, tmp_path, capsys):
    import json

    from orchestrator.cli import main

    index = tmp_path / "idx"
    rc = main(
        ["images", "index", str(photos), "--index", str(index), "--encoder", "fake", "--json", "--ray", ray_env.address]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["images"] == 30 and out["added"] == 30
