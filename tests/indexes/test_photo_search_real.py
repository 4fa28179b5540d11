"""Hybrid photo search with the real offline encoder (ConSE over EfficientNet-Lite0 + USE-multilingual):
folder names, dates and people find photos that the embedding alone does not put first."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import skimage.data as sd
from PIL import Image

from indexes.images import ImageIndex
from indexes.photo_query import PersonDetector, understand
from tests.indexes.test_photo_signals import save_photo

pytestmark = pytest.mark.slow


def _rgb(arr: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).convert("RGB"))


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("lib")
    save_photo(root / "Lisbon weekend" / "DSC_0101.jpg", _rgb(sd.horse()), "2022:10:01 10:00:00")
    save_photo(root / "Camera Roll" / "IMG_0001.jpg", sd.astronaut(), "2021:06:01 10:00:00")
    save_photo(root / "Camera Roll" / "IMG_0002.jpg", sd.chelsea(), "2023:02:11 10:00:00")
    save_photo(root / "Camera Roll" / "IMG_0003.jpg", sd.coffee(), "2023:02:12 10:00:00")
    save_photo(root / "Camera Roll" / "IMG_0004.jpg", sd.rocket(), "2019:08:20 10:00:00")
    save_photo(root / "Camera Roll" / "IMG_0005.jpg", _rgb(sd.camera()), "2020:01:05 10:00:00")
    save_photo(root / "misc" / "IMG_0006.jpg", sd.stereo_motorcycle()[0], "2022:04:01 10:00:00")
    with ImageIndex.open(root.with_name("idx"), "conse") as idx:
        idx.index_folder(root)
    idx = ImageIndex.open(root.with_name("idx"), read_only=True)
    idx.library = root
    yield idx
    idx.close()


def _top(idx: ImageIndex, query: str, mode: str) -> str:
    return str(Path(idx.search(query, k=1, mode=mode)[0].path).relative_to(idx.library))


def test_a_folder_name_finds_its_photos_where_the_embedding_alone_does_not(index):
    assert _top(index, "photos from the Lisbon weekend", "dense") != "Lisbon weekend/DSC_0101.jpg"
    assert _top(index, "photos from the Lisbon weekend", "hybrid") == "Lisbon weekend/DSC_0101.jpg"


def test_a_date_in_the_query_finds_the_photo_taken_then(index):
    assert _top(index, "photos from 2019", "dense") != "Camera Roll/IMG_0004.jpg"
    assert _top(index, "photos from 2019", "hybrid") == "Camera Roll/IMG_0004.jpg"
    assert _top(index, "2019年的照片", "hybrid") == "Camera Roll/IMG_0004.jpg"


def test_people_words_are_recognised_by_the_encoder_not_a_list(index):
    persons = PersonDetector(index.encoder.embed_texts)
    today = date(2026, 12, 7)
    assert understand("a woman wearing a helmet", persons, today).people == ["woman"]
    q = understand("两个人在海边", persons, today)
    assert "人" in q.people and q.people_count == 2
    assert understand("three kids playing", persons, today).people_count == 3
    for query in ("a foal in a field", "一杯茶", "a red motorcycle", "photos of a lighthouse"):
        assert understand(query, persons, today).people == [], query
    # words for the medium are not BM25 terms ('photo' in a photo's OCR text says nothing about the photo)
    q = understand("Canon 5D photos", persons, today)
    assert q.medium == ["photos"] and q.bm25_terms() == ["canon", "5d"]
    assert understand("我的截图", persons, today).medium == []  # a screenshot is a kind of photo to look for
    # the face signal lifts the photo with a face for a query about a person
    assert _top(index, "a woman wearing a helmet", "hybrid") == "Camera Roll/IMG_0001.jpg"
