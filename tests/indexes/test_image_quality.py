"""The offline ConSE encoder on real photos that ship offline (scikit-image, scikit-learn).

Queries avoid the ImageNet class names ("a cat", not "tabby cat"; "a rocket launch": ImageNet has
only "missile"), half of them in Chinese.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

QUERIES = [
    ("a cup of coffee", "coffee"),
    ("一杯咖啡", "coffee"),
    ("a cat", "chelsea"),
    ("猫", "chelsea"),
    ("a rocket launch", "rocket"),
    ("摩托车", "motorcycle"),
    ("a flower", "flower"),
    ("中国古建筑", "china"),
]


def write_sample_photos(folder) -> dict[str, str]:
    skdata = pytest.importorskip("skimage.data")
    datasets = pytest.importorskip("sklearn.datasets")
    arrays = {n: getattr(skdata, n)() for n in ("astronaut", "chelsea", "coffee", "rocket", "horse", "camera", "page")}
    arrays["motorcycle"] = skdata.stereo_motorcycle()[0]
    sample = datasets.load_sample_images()
    for fname, arr in zip(sample.filenames, sample.images):
        arrays[fname.rsplit("/", 1)[-1].split(".")[0]] = arr
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, arr in arrays.items():
        img = Image.fromarray(arr.astype(np.uint8) if arr.dtype == bool else arr)
        paths[name] = str(folder / f"{name}.jpg")
        img.convert("RGB").save(paths[name], quality=92)
    return paths


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory):
    from indexes.images import ImageIndex

    tmp = tmp_path_factory.mktemp("conse")
    paths = write_sample_photos(tmp / "photos")
    idx = ImageIndex.open(tmp / "idx", "conse")
    report = idx.index_folder(tmp / "photos")
    assert report.added == 10 and not report.skipped
    idx.save()
    yield idx, paths
    idx.close()


def test_text_queries_in_english_and_chinese_find_the_right_photo(photo_index):
    idx, paths = photo_index
    right = []
    for query, want in QUERIES:
        hits = idx.search(query, k=3)
        right.append(hits[0].path == paths[want])
        assert hits[0].encoder.startswith("conse:")
    assert sum(right) >= 7, [q for (q, _), ok in zip(QUERIES, right) if not ok]


def test_image_to_image_uses_penultimate_features(photo_index, tmp_path):
    idx, paths = photo_index
    cat = Image.open(paths["chelsea"])
    w, h = cat.size
    variant = cat.crop((w // 8, h // 8, w - w // 8, h - h // 8)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    hits = idx.search(image=np.asarray(variant), k=2)
    assert hits[0].path == paths["chelsea"] and hits[0].space == "visual"


def test_auto_tags_and_tag_filter(photo_index):
    idx, paths = photo_index
    coffee = next(i for i in idx.list_images() if i.path == paths["coffee"])
    assert "espresso" in coffee.tags
    assert [h.path for h in idx.search("a drink", k=5, tag="espresso")] == [paths["coffee"]]


def test_zero_shot_tagging_with_conse(photo_index):
    idx, paths = photo_index
    tags = idx.tag(paths["chelsea"], ["car", "cat", "building", "flower"])
    assert tags[0].label == "cat"
    tags = idx.tag(paths["motorcycle"], ["一只狗", "摩托车", "一杯茶"])
    assert tags[0].label == "摩托车"


def test_the_tool_answers_from_the_conse_index(photo_index):
    from tools.image_search import ImageSearchTool

    idx, paths = photo_index
    tool = ImageSearchTool(index_path=idx.folder)
    try:
        result = tool({"query": "一杯咖啡", "k": 3})
    finally:
        tool.close()
    assert result.hits[0].path == paths["coffee"] and result.encoder.startswith("conse:")
    assert "coffee.jpg" in result.summary()
