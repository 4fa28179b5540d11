"""generate_image plumbing on a tiny randomly initialised StableDiffusionPipeline built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polymodal.config import DiffusionConfig
from polymodal.errors import Cancelled, InputError, ModelUnavailable
from tools.base import ToolContext, to_plain
from tools.generate import NO_WEIGHTS_MESSAGE, GenerateImageTool, read_parameters

pytest.importorskip("diffusers")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    import torch

    from tools.diffusion_testing import build_random_sd_pipeline

    threads = torch.get_num_threads()
    path = build_random_sd_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipe")
    torch.set_num_threads(threads)
    return path


@pytest.fixture
def tool(tiny_sd, tmp_path):
    return GenerateImageTool(DiffusionConfig(model=str(tiny_sd), steps=2, width=64, height=64), tmp_path / "out")


def _pixels(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


# -- no weights, bad references ------------------------------------------------------------------


def test_no_weights_configured_says_how_to_configure(tmp_path):
    tool = GenerateImageTool(DiffusionConfig(model=""), tmp_path)
    with pytest.raises(ModelUnavailable) as err:
        tool({"prompt": "a red fox in snow"})
    assert str(err.value) == NO_WEIGHTS_MESSAGE
    assert "\n" not in str(err.value) and "[diffusion] model" in str(err.value)
    assert not any(tmp_path.iterdir()), "nothing may be written when there is no model"


def test_missing_folder_and_non_pipeline_folder(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found"):
        GenerateImageTool(DiffusionConfig(model=str(tmp_path / "nope")), tmp_path).run("a fox")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="model_index.json"):
        GenerateImageTool(DiffusionConfig(model=str(tmp_path / "empty")), tmp_path).run("a fox")


def test_unreachable_hub_id_is_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailable, match="cannot load diffusion model 'nobody/no-such-model'") as err:
        GenerateImageTool(DiffusionConfig(model="nobody/no-such-model"), tmp_path).run("a fox")
    assert "\n" not in str(err.value)


# -- argument validation (before anything loads) --------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"prompt": "  "}, "prompt is empty"),
        ({"prompt": "x", "width": 100}, "width must be a multiple of 8"),
        ({"prompt": "x", "height": 4096}, "height must be a multiple of 8"),
        ({"prompt": "x", "width": 0}, "width must be a multiple of 8"),
        ({"prompt": "x", "n": 0}, "n must be between"),
        ({"prompt": "x", "n": 9}, "n must be between"),
        ({"prompt": "x", "steps": 0}, "steps must be between"),
        ({"prompt": "x", "guidance": -1}, "guidance must be between"),
        ({"prompt": "x", "seed": -3}, "seed must be"),
        ({"prompt": "x", "style": "oil"}, "unknown argument"),
    ],
)
def test_invalid_arguments_are_rejected_before_loading(tool, args, fragment):
    with pytest.raises(InputError, match=fragment):
        tool(args)
    assert not tool.loaded


def test_schema_comes_from_the_signature():
    schema = GenerateImageTool().input_schema
    assert schema["required"] == ["prompt"]
    assert set(schema["properties"]) == {
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance",
        "width",
        "height",
        "n",
    }
    assert schema["properties"]["width"]["type"] == "integer"
    assert "multiple of 8" in schema["properties"]["width"]["description"]
    assert "context" not in schema["properties"]


# -- generation ----------------------------------------------------------------------------------


def test_generates_files_with_metadata_inside_the_output_folder(tool, tiny_sd, tmp_path):
    prompt = "a red fox in snow / ../../etc 数字五"
    result = tool({"prompt": prompt, "seed": 7, "width": 64, "height": 48, "n": 2})
    assert len(result.paths) == 2 and result.artifacts == result.paths
    assert result.seeds == [7, 8] and (result.width, result.height) == (64, 48)
    out = (tmp_path / "out").resolve()
    for path, seed in zip(result.paths, result.seeds):
        p = Path(path).resolve()
        assert p.parent == out and p.suffix == ".png" and "fox" not in p.name
        assert _pixels(p).shape == (48, 64, 3)
        meta = read_parameters(p)
        assert meta["prompt"] == prompt and meta["seed"] == seed
        assert meta["model"] == str(tiny_sd) and meta["pipeline"] == "StableDiffusionPipeline"
        assert (meta["steps"], meta["guidance"], meta["width"], meta["height"]) == (2, 0.0, 64, 48)
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in result.paths)
    line = result.summary()
    assert "\n" not in line and "2 images" in line and "seed 7" in line
    json.dumps(to_plain(result))  # plain data all the way down


def test_same_seed_reproduces_and_other_seeds_differ(tool):
    a = tool({"prompt": "a lighthouse", "seed": 3})
    b = tool({"prompt": "a lighthouse", "seed": 3})
    c = tool({"prompt": "a lighthouse", "seed": 4})
    assert np.array_equal(_pixels(a.paths[0]), _pixels(b.paths[0]))
    assert not np.array_equal(_pixels(a.paths[0]), _pixels(c.paths[0]))


def test_each_image_of_a_batch_is_reproducible_from_its_own_seed(tool):
    batch = tool({"prompt": "a lighthouse", "seed": 10, "n": 2})
    single = tool({"prompt": "a lighthouse", "seed": 11})
    diff = np.abs(_pixels(batch.paths[1]) - _pixels(single.paths[0]))
    assert diff.max() <= 2  # same noise; only batched float arithmetic may differ by a rounding step


def test_prompt_negative_prompt_and_guidance_reach_the_pipeline(tool):
    base = {"seed": 1, "guidance": 5.0}
    ref = _pixels(tool({"prompt": "a red fox", **base}).paths[0])
    other_prompt = _pixels(tool({"prompt": "a blue whale", **base}).paths[0])
    negative = _pixels(tool({"prompt": "a red fox", "negative_prompt": "blurry", **base}).paths[0])
    other_guidance = _pixels(tool({"prompt": "a red fox", "seed": 1, "guidance": 9.0}).paths[0])
    for changed in (other_prompt, negative, other_guidance):
        assert not np.array_equal(ref, changed)


def test_steps_reach_the_pipeline_and_progress_is_reported(tool):
    seen: list[tuple[float, str]] = []
    result = tool(
        {"prompt": "a fox", "seed": 0, "steps": 3}, context=ToolContext(progress=lambda f, m: seen.append((f, m)))
    )
    steps = [m for _, m in seen if m.startswith("step ")]
    assert steps == ["step 1/3", "step 2/3", "step 3/3"]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.steps == 3 and read_parameters(result.paths[0])["steps"] == 3


def test_cancellation_between_steps_writes_nothing(tool, tmp_path):
    context = ToolContext()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message == "step 2/5":
            context.cancel.set()

    context.progress = progress
    with pytest.raises(Cancelled):
        tool({"prompt": "a fox", "steps": 5}, context=context)
    assert "step 3/5" not in seen
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert tool({"prompt": "a fox", "steps": 2}).paths  # the tool still works afterwards


def test_loads_once_unloads_and_reloads(tool):
    assert not tool.loaded
    tool({"prompt": "a fox", "seed": 1})
    pipe = tool.pipeline()
    tool({"prompt": "a fox", "seed": 2})
    assert tool.pipeline() is pipe
    tool.unload()
    assert not tool.loaded
    assert tool({"prompt": "a fox", "seed": 1}).paths and tool.loaded


def test_memory_budget_decides_residency(tiny_sd, tmp_path):
    tool = GenerateImageTool(
        DiffusionConfig(model=str(tiny_sd), steps=1, width=64, height=64, memory_budget_mb=0), tmp_path
    )
    result = tool({"prompt": "a fox"})
    assert result.resident is False and not tool.loaded


def test_tiny_vae_replaces_the_decoder(tiny_sd, tmp_path):
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
    ).save_pretrained(tmp_path / "taesd")
    tool = GenerateImageTool(
        DiffusionConfig(model=str(tiny_sd), steps=1, width=64, height=64, tiny_vae=str(tmp_path / "taesd")),
        tmp_path / "out",
    )
    result = tool({"prompt": "a fox", "seed": 0})
    assert type(tool.pipeline().vae).__name__ == "AutoencoderTiny"
    assert _pixels(result.paths[0]).shape == (64, 64, 3)


def test_large_images_decode_in_tiles(tool, monkeypatch):
    import tools.generate as gen

    pipe = tool.pipeline()
    monkeypatch.setattr(gen, "TILED_DECODE_PIXELS", 64 * 48)
    big = tool({"prompt": "a fox", "seed": 2, "steps": 1, "width": 64, "height": 64})
    assert pipe.vae.use_tiling is True
    tool({"prompt": "a fox", "seed": 2, "steps": 1, "width": 64, "height": 48})
    assert pipe.vae.use_tiling is False
    assert _pixels(big.paths[0]).shape == (64, 64, 3)
