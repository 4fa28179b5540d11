"""ImageIndex over the colour fake: incremental indexing, deletes, filters, thumbnails; the index
contract (reopen, repair, readers, kill -9, encoder mismatch) comes from indexes.testing."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from indexes.images import ImageIndex
from indexes.testing import ImageIndexKit, IndexContractTests
from polymodal.errors import Cancelled, InputError

COLOURS = {"red": (230, 20, 20), "green": (20, 200, 30), "blue": (10, 20, 220), "yellow": (240, 230, 20)}


class TestImageIndexContract(IndexContractTests):
    @pytest.fixture
    def kit(self, tmp_path):
        return ImageIndexKit(tmp_path / "scratch")


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "photos"
    (root / "trips").mkdir(parents=True)
    for name, rgb in COLOURS.items():
        folder = root / "trips" if name == "yellow" else root
        Image.new("RGB", (640, 480), rgb).save(folder / f"{name}.jpg", quality=90)
    (root / "notes.txt").write_text("not a photo")
    (root / "fake.png").write_bytes(b"definitely not a png")
    return root


def _open(tmp_path, **kw):
    return ImageIndex.open(tmp_path / "idx", kw.pop("encoder", "fake"), **kw)


def test_index_and_search_by_text_and_image(tmp_path, library):
    with _open(tmp_path) as idx:
        report = idx.index_folder(library)
        assert (report.added, report.unchanged, report.ignored) == (4, 0, 1)
        assert [s.reason for s in report.skipped] == ["fake.png: not an image (or an unsupported format)"]
        hits = idx.search("something red", k=2)
        assert hits[0].path == str(library / "red.jpg") and hits[0].dense_score > 0.99
        assert hits[0].encoder == "fake-colour" and hits[0].space == "joint"
        assert hits[0].score > hits[1].score
        assert idx.search("黄色", k=1)[0].path == str(library / "trips" / "yellow.jpg")
        by_image = idx.search(image=str(library / "blue.jpg"), k=1)
        assert by_image[0].path == str(library / "blue.jpg") and by_image[0].space == "visual"
        arr = np.zeros((50, 50, 3), np.uint8)
        arr[..., 1] = 200
        assert idx.search(image=arr, k=1)[0].path == str(library / "green.jpg")


def test_text_and_image_together_search_the_joint_space(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
        both = idx.search("red", image=str(library / "red.jpg"), k=2)
        assert both[0].path == str(library / "red.jpg") and both[0].space == "joint" and len(both) == 2


def test_thumbnails_are_cached_inside_the_index(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
        hit = idx.search("blue", k=1)[0]
        thumb = Image.open(hit.thumbnail)
        assert hit.thumbnail.startswith(str(tmp_path / "idx" / "thumbs"))
        assert max(thumb.size) == 256 and thumb.size == (256, 192)


def test_incremental_reindex_by_content_hash(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
        again = idx.index_folder(library)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
        # same bytes, new mtime: re-hashed, not re-embedded
        os.utime(library / "red.jpg", ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
        touched = idx.index_folder(library)
        assert (touched.updated, touched.unchanged) == (0, 4)
        # new content under the same name: re-embedded; the old vector is gone
        Image.new("RGB", (64, 64), (20, 20, 230)).save(library / "red.jpg")
        changed = idx.index_folder(library)
        assert (changed.added, changed.updated) == (0, 1)
        assert idx.count() == 4
        top2 = [h.path for h in idx.search("blue", k=2, mode="dense")]
        assert set(top2) == {str(library / "red.jpg"), str(library / "blue.jpg")}
        assert all(h.path != str(library / "red.jpg") for h in idx.search("red", k=1, mode="dense"))


def test_deleted_files_are_pruned_and_delete_api(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
        (library / "green.jpg").unlink()
        report = idx.index_folder(library)
        assert report.removed == 1 and idx.count() == 3
        assert str(library / "green.jpg") not in [h.path for h in idx.search("green", k=5)]
        assert idx.delete([library / "trips"]) == 1
        assert idx.count() == 2 and idx.delete([library / "nothing.jpg"]) == 0
        thumbs = list((tmp_path / "idx" / "thumbs").glob("*/*.jpg"))
        assert len(thumbs) == 2  # thumbnails of removed images are dropped


def test_a_photo_that_turns_corrupt_leaves_the_index(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
        (library / "green.jpg").write_bytes(b"\xff\xd8\xff garbage now")
        report = idx.index_folder(library)
        assert report.removed == 1 and idx.count() == 3
        assert any(s.path == str(library / "green.jpg") for s in report.skipped)
        assert all(h.path != str(library / "green.jpg") for h in idx.search("green", k=4))


def test_folder_and_tag_filters(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
        only_trips = idx.search("red", k=5, folder=library / "trips")
        assert [h.path for h in only_trips] == [str(library / "trips" / "yellow.jpg")]
        idx.add_tags(library / "blue.jpg", ["Holiday 2024"])
        tagged = idx.search("red", k=5, tag="holiday")
        assert [h.path for h in tagged] == [str(library / "blue.jpg")] and tagged[0].tags == ["Holiday 2024"]
        assert idx.search("red", k=5, tag="nope") == []
        with pytest.raises(InputError):
            idx.add_tags(library / "missing.jpg", ["x"])


def test_reopened_with_the_manifest_encoder_text_still_searches_the_joint_space(tmp_path, library):
    with _open(tmp_path) as idx:
        idx.index_folder(library)
    with ImageIndex.open(tmp_path / "idx", read_only=True) as idx:  # encoder from the manifest
        assert idx.encoder.name == "fake-colour" and idx.count() == 4
        assert idx.search("yellow", k=1)[0].path.endswith("yellow.jpg")
        assert idx.info()["visual_dim"] == 49


def test_progress_callback_and_cancel(tmp_path, library):
    seen = []
    with _open(tmp_path) as idx:
        idx.index_folder(library, progress=lambda done, total: seen.append((done, total)), batch_size=2)
        assert seen == [(2, 5), (4, 5), (5, 5)]  # 4 photos + fake.png, in batches of 2
    cancel = threading.Event()
    cancel.set()
    with ImageIndex.open(tmp_path / "idx2", "fake") as idx:
        with pytest.raises(Cancelled):
            idx.index_folder(library, cancel=cancel)
        assert idx.count() == 0


def test_bad_inputs(tmp_path, library):
    with _open(tmp_path) as idx:
        with pytest.raises(InputError):
            idx.search("")
        with pytest.raises(InputError):
            idx.index_folder(tmp_path / "nowhere")
        with pytest.raises(InputError, match="query image"):
            idx.search(image=np.zeros((3, 3, 9), np.uint8))
