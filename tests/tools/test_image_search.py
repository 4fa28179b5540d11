"""The image_search tool and the `polymodal images` commands, over an index built with the colour fake."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from indexes.images import ImageIndex
from polymodal.errors import InputError, ToolError
from tools.base import ToolContext, to_plain
from tools.image_search import ImageSearchResult, ImageSearchTool


@pytest.fixture
def index_dir(tmp_path):
    photos = tmp_path / "photos"
    (photos / "2024").mkdir(parents=True)
    for name, rgb in {"red": (230, 20, 20), "green": (20, 200, 30), "blue": (10, 20, 220)}.items():
        Image.new("RGB", (80, 60), rgb).save(photos / f"{name}.jpg")
    Image.new("RGB", (80, 60), (200, 30, 30)).save(photos / "2024" / "dark-red.png")
    with ImageIndex.open(tmp_path / "idx", "fake") as idx:
        idx.index_folder(photos)
    return tmp_path / "idx"


def test_schema_comes_from_the_signature():
    spec = ImageSearchTool(index_path="/nowhere").spec()
    props = spec["parameters"]["properties"]
    assert spec["name"] == "image_search"
    assert set(props) == {"query", "image", "k", "folder", "tag", "date_from", "date_to", "has_faces"}
    assert props["has_faces"]["type"] == "boolean"
    assert props["k"] == {"type": "integer", "default": 5, "description": "how many photos to return"}
    assert spec["parameters"]["required"] == []


def test_text_search_returns_typed_hits_with_provenance(index_dir):
    tool = ImageSearchTool(index_path=index_dir)
    result = tool({"query": "red", "k": 2}, ToolContext())
    assert isinstance(result, ImageSearchResult)
    assert [h.path.rsplit("/", 1)[-1] for h in result.hits] == ["red.jpg", "dark-red.png"]
    assert result.encoder == "fake-colour" and all(h.encoder == "fake-colour" for h in result.hits)
    assert result.artifacts == [h.path for h in result.hits]
    assert all(t.endswith(".jpg") and "thumbs" in t for t in result.thumbnails)
    assert "red.jpg" in result.summary() and "fake-colour" in result.summary()
    plain = to_plain(result)
    assert json.dumps(plain) and plain["hits"][0]["thumbnail"] == result.hits[0].thumbnail


def test_image_by_path_array_and_folder_filter(index_dir, tmp_path):
    tool = ImageSearchTool(index_path=index_dir)
    example = tmp_path / "photos" / "blue.jpg"
    assert tool({"image": str(example), "k": 1}).hits[0].path == str(example)
    arr = np.zeros((30, 30, 3), np.uint8)
    arr[..., 1] = 210
    assert tool.search(image=arr, k=1).hits[0].path.endswith("green.jpg")
    only = tool({"query": "red", "folder": str(tmp_path / "photos" / "2024")})
    assert [h.path for h in only.hits] == [str(tmp_path / "photos" / "2024" / "dark-red.png")]


def test_user_fixable_problems_are_one_line_errors(index_dir, tmp_path):
    tool = ImageSearchTool(index_path=index_dir)
    with pytest.raises(InputError, match="text query or an example image"):
        tool({})
    with pytest.raises(InputError, match="not found"):
        tool({"image": str(tmp_path / "missing.jpg")})
    with pytest.raises(InputError):
        tool({"query": "red", "k": 0})
    with pytest.raises(ToolError, match="polymodal images index"):
        ImageSearchTool(index_path=tmp_path / "empty")({"query": "red"})


def test_from_config_uses_the_configured_index_path(index_dir):
    from polymodal.config import Config

    cfg = Config()
    cfg.images.index_path = str(index_dir)
    assert ImageSearchTool.from_config(cfg)({"query": "green", "k": 1}).hits[0].path.endswith("green.jpg")


# -- the CLI ---------------------------------------------------------------------------------------


def _cli(capsys, *argv):
    from orchestrator.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_index_search_tag_json(tmp_path, capsys):
    photos = tmp_path / "p"
    photos.mkdir()
    Image.new("RGB", (40, 40), (250, 240, 10)).save(photos / "sun.jpg")
    Image.new("RGB", (40, 40), (10, 10, 200)).save(photos / "sea.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff nope")
    idx = str(tmp_path / "idx")
    code, out, _ = _cli(capsys, "images", "index", str(photos), "--index", idx, "--encoder", "fake", "--json")
    data = json.loads(out)
    assert code == 0 and data["added"] == 2 and data["images"] == 2
    assert len(data["skipped"]) == 1 and data["skipped"][0]["reason"].startswith("broken.jpg:")
    code, out, _ = _cli(capsys, "images", "search", "yellow", "--index", idx, "-k", "1", "--json")
    hit = json.loads(out)["hits"][0]
    assert code == 0 and hit["path"].endswith("sun.jpg") and hit["encoder"] == "fake-colour"
    assert set(hit) >= {"path", "score", "thumbnail", "encoder"}
    code, out, _ = _cli(capsys, "images", "search", "--image", str(photos / "sea.jpg"), "--index", idx, "--json")
    assert json.loads(out)["hits"][0]["path"].endswith("sea.jpg")
    code, out, _ = _cli(
        capsys, "images", "tag", str(photos / "sun.jpg"), "--labels", "blue,yellow", "--index", idx, "--json"
    )
    assert code == 0 and json.loads(out)["tags"][0]["label"] == "yellow"
    code, out, _ = _cli(capsys, "images", "info", "--index", idx, "--json")
    assert json.loads(out)["index"]["encoder"] == "fake-colour"
    assert json.loads(out)["configured_encoder"]["active"] == "conse"


def test_cli_failures_exit_non_zero(tmp_path, capsys):
    code, out, err = _cli(capsys, "images", "search", "x", "--index", str(tmp_path / "none"), "--json")
    assert code == 1 and json.loads(out)["ok"] is False and "polymodal images index" in err
    code, _, err = _cli(
        capsys, "images", "index", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i"), "--encoder", "fake"
    )
    assert code == 1 and "not a folder" in err
    code, _, err = _cli(capsys, "images", "tag", str(tmp_path / "none.jpg"), "--labels", "a", "--encoder", "fake")
    assert code == 1 and "none.jpg" in err
