import json
import os

import pytest

from polymodal import errors
from polymodal.fsutil import atomic_write_json, atomic_writer


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "state.json"
    atomic_write_json(p, {"a": 1})
    atomic_write_json(p, {"a": 2, "中": "文"})
    assert json.loads(p.read_text(encoding="utf-8")) == {"a": 2, "中": "文"}
    assert os.listdir(tmp_path) == ["state.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "state.json"
    atomic_write_json(p, {"keep": True})

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_writer(p, boom)
    assert json.loads(p.read_text()) == {"keep": True}
    assert os.listdir(tmp_path) == ["state.json"]


def test_one_exception_tree_and_one_line_messages():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.PolymodalError)
    assert str(errors.ToolError("bad\n  thing   here")) == "bad thing here"
    e = errors.MissingExtra("clip", "open_clip", "image search")
    assert "polymodal[clip]" in str(e) and isinstance(e, errors.ModelUnavailable)


def test_require_names_the_extra():
    with pytest.raises(errors.MissingExtra, match=r"polymodal\[ui\]"):
        errors.require("surely_not_a_module_xyz", "ui")
