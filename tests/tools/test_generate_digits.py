"""generate_image proven on a real model: the digits diffusion pipeline trained by the project.

The pipeline is trained once per recipe checksum (a few minutes on 2 cores) and cached under the
polymodal cache folder; generated images are judged by an SVC trained on real digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.config import DiffusionConfig
from tools.base import ToolContext
from tools.generate import GenerateImageTool, read_parameters

pytest.importorskip("diffusers")
pytest.importorskip("sklearn")

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HANZI = "零一二三四五六七八九"
# (phrasing, images): the first three are training phrasings, the last one never seen in training.
PHRASINGS = (("the digit {w}", 3), ("a handwritten {d}", 3), ("数字{z}", 2), ("draw the number {w}", 2))


@pytest.fixture(scope="module")
def digits_model():
    from tools.digits_diffusion import digits_pipeline_path

    return digits_pipeline_path()


@pytest.fixture(scope="module")
def classifier():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.5, random_state=0, stratify=digits.target
    )
    clf = SVC(gamma=0.001, C=10).fit(x_train, y_train)
    held_out = clf.score(x_test, y_test)
    assert held_out >= 0.97, f"the judge itself is too weak: {held_out:.3f} on held-out real digits"
    return clf


def _load_8x8(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == (8, 8)
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0 * 16.0  # the range of load_digits


@pytest.fixture(scope="module")
def barely_trained(tmp_path_factory):
    """The same recipe and code path, 2 training steps: a real pipeline folder in seconds."""
    from tools.digits_diffusion import train

    return train(tmp_path_factory.mktemp("digits") / "pipe", {"steps": 2, "batch_size": 8}, log=lambda m: None)


def test_trained_folder_is_a_diffusers_pipeline_that_generate_image_loads(barely_trained, tmp_path):
    import json

    index = json.loads((barely_trained / "model_index.json").read_text())
    assert index["_class_name"] == "DigitsTextPipeline" and index["unet"] == ["diffusers", "UNet2DConditionModel"]
    tool = GenerateImageTool(DiffusionConfig(model=str(barely_trained)), tmp_path)
    result = tool({"prompt": "数字五", "negative_prompt": "the digit three", "seed": 3})
    assert result.pipeline == "DigitsTextPipeline"
    assert (result.steps, result.guidance, result.width, result.height) == (20, 1.5, 8, 8)  # the model's own
    again = tool({"prompt": "数字五", "negative_prompt": "the digit three", "seed": 3})
    assert np.array_equal(_load_8x8(result.paths[0]), _load_8x8(again.paths[0]))


def test_config_and_arguments_override_the_model_recommendation(barely_trained, tmp_path):
    from PIL import Image

    seen: list[str] = []
    tool = GenerateImageTool(DiffusionConfig(model=str(barely_trained), steps=3), tmp_path)
    result = tool(
        {"prompt": "the digit one", "width": 32, "height": 16},
        context=ToolContext(progress=lambda f, m: seen.append(m)),
    )
    assert "step 3/3" in seen and result.steps == 3 and result.guidance == 1.5
    with Image.open(result.paths[0]) as im:  # drawn at 8x8, upscaled pixel-exact to the requested size
        assert im.size == (32, 16)


@pytest.mark.slow
def test_generated_digits_are_recognised(digits_model, classifier, tmp_path, artifacts_dir):
    tool = GenerateImageTool(DiffusionConfig(model=str(digits_model)), tmp_path / "out")
    grid = np.zeros((10, 10, 8, 8), dtype=np.float32)
    steps_seen: list[str] = []
    correct = 0
    for digit in range(10):
        images = []
        for j, (phrasing, count) in enumerate(PHRASINGS):
            prompt = phrasing.format(w=WORDS[digit], d=digit, z=HANZI[digit])
            result = tool(
                {"prompt": prompt, "n": count, "seed": 1000 * digit + 100 * j},
                context=ToolContext(progress=lambda f, m: steps_seen.append(m)),
            )
            assert result.pipeline == "DigitsTextPipeline" and (result.width, result.height) == (8, 8)
            assert read_parameters(result.paths[0])["prompt"] == prompt
            images += [_load_8x8(p) for p in result.paths]
        predicted = classifier.predict(np.stack(images).reshape(len(images), -1))
        correct += int((predicted == digit).sum())
        grid[digit] = np.stack(images)
    # the model's own recommendation (20 DDIM steps, guidance 1.5) replaced the untouched config defaults
    assert "step 20/20" in steps_seen and "step 21/20" not in steps_seen
    _save_grid(grid, artifacts_dir / "generate_digits_grid.png")
    accuracy = correct / 100
    print(f"generated digits recognised as requested: {accuracy:.0%}")
    assert accuracy >= 0.80, f"only {accuracy:.0%} of generated digits were recognised as the requested digit"


def _save_grid(grid: np.ndarray, path) -> None:
    """Rows: digits 0-9, columns: the 10 images generated for it; each pixel drawn 4x4."""
    import io

    from PIL import Image

    from polymodal.fsutil import atomic_write_bytes

    cells = np.pad(grid, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.0)  # background-coloured gutters
    rows = [np.concatenate(list(row), axis=1) for row in cells]
    pixels = np.concatenate(rows, axis=0)
    image = Image.fromarray((255 - pixels / 16.0 * 255).clip(0, 255).astype(np.uint8), mode="L")
    image = image.resize((image.width * 4, image.height * 4), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
