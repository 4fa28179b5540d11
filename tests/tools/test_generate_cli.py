"""`polymodal generate`: writes where --out says, --json, one-line failures with a non-zero exit."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli import main
from tools.generate import NO_WEIGHTS_MESSAGE, read_parameters

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from tools.diffusion_testing import build_random_sd_pipeline

    return build_random_sd_pipeline(tmp_path_factory.mktemp("tiny-sd-cli") / "pipe")


def test_no_weights_fails_with_one_line(capsys):
    code = main(["generate", "a red fox in snow", "--json"])
    out, err = capsys.readouterr()
    assert code != 0
    assert json.loads(out) == {"ok": False, "error": NO_WEIGHTS_MESSAGE}
    assert err.strip() == f"error: {NO_WEIGHTS_MESSAGE}"


def test_generate_to_out_file_with_json(tiny_sd, tmp_path, capsys):
    target = tmp_path / "fox.png"
    code = main(
        [
            "generate",
            "a red fox in snow",
            "--out",
            str(target),
            "--model",
            str(tiny_sd),
            "--seed",
            "5",
            "--steps",
            "2",
            "--guidance",
            "0",
            "--width",
            "64",
            "--height",
            "40",
            "--json",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and data["paths"] == [str(target)] and data["seeds"] == [5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fox.png"]  # no temporary files left
    meta = read_parameters(target)
    assert meta["prompt"] == "a red fox in snow" and meta["seed"] == 5 and meta["height"] == 40


def test_several_images_get_numbered_names(tiny_sd, tmp_path, capsys):
    code = main(
        [
            "generate",
            "a lighthouse",
            "--out",
            str(tmp_path / "l.png"),
            "--model",
            str(tiny_sd),
            "--n",
            "2",
            "--steps",
            "1",
            "--width",
            "32",
            "--height",
            "32",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and "Generated 2 images" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l-1.png", "l-2.png"]


def test_bad_arguments_exit_non_zero(tiny_sd, tmp_path, capsys):
    assert main(["generate", "x", "--model", str(tiny_sd), "--width", "100", "--out", str(tmp_path / "a.png")]) != 0
    assert "multiple of 8" in capsys.readouterr().err
    assert main(["generate", "x", "--model", str(tiny_sd), "--out", str(tmp_path / "a.jpg")]) != 0
    assert ".png" in capsys.readouterr().err
