"""Image encoders: the colour fake, the registry and `describe`, and open_clip on a tiny random CLIP."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from indexes.image_encoders import (
    ImageEncoder,
    describe,
    encoder_from_spec,
    encoder_spec,
    get_image_encoder,
    resolve_encoder,
)
from indexes.image_encoders.fake import ColourEncoder
from polymodal.config import ImagesConfig
from polymodal.errors import ConfigError, ModelUnavailable


def _solid(rgb, size=(40, 30)):
    return Image.new("RGB", size, rgb)


# -- the fake -------------------------------------------------------------------------------------


def test_fake_matches_colour_words_in_english_and_chinese():
    enc = ColourEncoder()
    assert isinstance(enc, ImageEncoder)
    imgs = enc.embed_images([_solid((220, 30, 30)), _solid((30, 30, 220)), _solid((30, 200, 30))])
    texts = enc.embed_texts(["a red car", "蓝色的海", "green grass"])
    assert np.allclose(np.linalg.norm(imgs, axis=1), 1) and np.allclose(np.linalg.norm(texts, axis=1), 1)
    assert (texts @ imgs.T).argmax(axis=1).tolist() == [0, 1, 2]


def test_fake_visual_space_sees_layout():
    enc = ColourEncoder()
    left = np.zeros((32, 32, 3), np.uint8)
    left[:, :16] = 255
    right = np.zeros((32, 32, 3), np.uint8)
    right[:, 16:] = 255
    e = enc.encode([left, right, left.copy()])
    assert e.visual.shape == (3, 49)
    assert e.visual[0] @ e.visual[2] > 0.99 > e.visual[0] @ e.visual[1]
    assert np.allclose(e.joint[0], e.joint[1])  # same mean colour: the joint space cannot tell them apart


def test_zero_shot_tag_ranks_labels():
    tags = ColourEncoder().tag(_solid((240, 240, 20)), ["blue", "yellow", "black"])
    assert [t.label for t in tags][0] == "yellow"
    assert abs(sum(t.probability for t in tags) - 1) < 1e-5
    assert ColourEncoder().tag(_solid((0, 0, 0)), []) == []


# -- registry -------------------------------------------------------------------------------------


def test_registry_names_and_errors():
    assert get_image_encoder("fake").name == "fake-colour"
    assert get_image_encoder("fake") is get_image_encoder("fake")  # one shared instance
    assert get_image_encoder("indexes.image_encoders.fake:ColourEncoder").dim == 8
    with pytest.raises(ConfigError, match="unknown image encoder"):
        get_image_encoder("nope")
    with pytest.raises(ConfigError, match="open_clip_checkpoint"):
        get_image_encoder(
            "open_clip", ImagesConfig(encoder="open_clip", open_clip_model="ViT-B-32", open_clip_checkpoint="")
        )


def test_auto_picks_open_clip_only_when_the_checkpoint_exists(tmp_path):
    from polymodal.config import ImagesConfig

    assert resolve_encoder(ImagesConfig())[0] == "conse"
    cfg = ImagesConfig(open_clip_checkpoint=str(tmp_path / "missing.safetensors"))
    backend, why = resolve_encoder(cfg)
    assert backend == "conse" and "not found" in why
    (tmp_path / "ckpt.safetensors").write_bytes(b"x")
    assert resolve_encoder(ImagesConfig(open_clip_checkpoint=str(tmp_path / "ckpt.safetensors")))[0] == "open_clip"
    assert resolve_encoder(ImagesConfig(encoder="fake"))[0] == "fake"
    assert resolve_encoder(ImagesConfig(encoder="fake"), "auto")[0] == "fake"  # "auto" defers to config
    assert resolve_encoder(ImagesConfig(encoder="fake"), "conse")[0] == "conse"  # an explicit name wins


def test_describe_names_the_active_encoder_without_loading_models():
    code = (
        "import sys, json; from polymodal.config import Config; from indexes.image_encoders import describe; "
        "d = describe(Config()); print(json.dumps([d['active'], d['name'], 'torch' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    active, name, torch_loaded = __import__("json").loads(out)
    assert active == "conse" and name.startswith("conse:") and torch_loaded is False
    d = describe(SimpleNamespace(encoder="fake", open_clip_checkpoint="", open_clip_model=""))
    assert d["active"] == "fake" and d["reason"] == "configured"


def test_spec_round_trip():
    enc = get_image_encoder("fake")
    assert encoder_from_spec(encoder_spec(enc)).name == enc.name


# -- open_clip on a tiny random CLIP built offline -----------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    pytest.importorskip("open_clip")
    from indexes.image_encoders.clip import build_tiny_clip

    folder = tmp_path_factory.mktemp("tiny-clip")
    cfg, ckpt = build_tiny_clip(folder, seed=0)
    return SimpleNamespace(folder=folder, config=cfg, checkpoint=ckpt)


def _photos():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48 + 8 * i, 64, 3), dtype=np.uint8) for i in range(5)]


def test_open_clip_save_load_round_trip_and_normalisation(tiny_clip, tmp_path):
    from indexes.image_encoders.clip import OpenClipEncoder, build_tiny_clip

    a = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="torch", cache_dir=tmp_path)
    b = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="torch", cache_dir=tmp_path)
    va, vb = a.embed_images(_photos()), b.embed_images(_photos())
    assert va.shape == (5, 32) and va.dtype == np.float32
    assert np.allclose(np.linalg.norm(va, axis=1), 1, atol=1e-5)
    assert np.allclose(va, vb, atol=1e-6)  # the saved weights are what loads
    other_cfg, other_ckpt = build_tiny_clip(tmp_path / "other", seed=1)
    c = OpenClipEncoder(str(other_cfg), str(other_ckpt), runtime="torch", cache_dir=tmp_path)
    assert not np.allclose(va, c.embed_images(_photos()), atol=1e-3)
    assert a.name == "open_clip:polymodal-tiny-clip@polymodal-tiny-clip"
    assert a.spec()["open_clip_checkpoint"] == str(tiny_clip.checkpoint)


def test_open_clip_batching_does_not_change_vectors(tiny_clip, tmp_path):
    from indexes.image_encoders.clip import OpenClipEncoder

    one = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="torch", batch_size=1)
    many = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="torch", batch_size=16)
    assert np.allclose(one.embed_images(_photos()), many.embed_images(_photos()), atol=1e-5)
    texts = ["a cat", "a photo of a very small dog on a red sofa", "猫"]
    assert np.allclose(one.embed_texts(texts), np.concatenate([one.embed_texts([t]) for t in texts]), atol=1e-5)


def test_open_clip_text_padded_to_longest_prompt_equals_full_context(tiny_clip):
    import torch

    from indexes.image_encoders.clip import OpenClipEncoder

    enc = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="torch")
    texts = ["a cat", "a photo of a very small dog on a red sofa"]
    tokens = enc.tokens(texts)
    assert tokens.shape[1] < 20  # not 77
    model = enc.model["model"]
    with torch.inference_mode():
        full = model.encode_text(enc.model["tokenizer"](texts)).numpy()
    full /= np.linalg.norm(full, axis=1, keepdims=True)
    assert np.allclose(enc.embed_texts(texts), full, atol=1e-5)


def test_open_clip_onnx_image_tower_matches_torch(tiny_clip, tmp_path):
    pytest.importorskip("onnxruntime")
    from indexes.image_encoders.clip import OpenClipEncoder

    t = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="torch", cache_dir=tmp_path)
    o = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="onnx", cache_dir=tmp_path)
    assert np.allclose(t.embed_images(_photos()), o.embed_images(_photos()), atol=1e-4)
    exported = list(tmp_path.glob("open_clip-visual-*.onnx"))
    assert len(exported) == 1
    mtime = exported[0].stat().st_mtime_ns
    o2 = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), runtime="onnx", cache_dir=tmp_path)
    o2.embed_images(_photos()[:1])
    assert exported[0].stat().st_mtime_ns == mtime  # cached, not re-exported


def test_open_clip_missing_checkpoint_is_a_clear_error(tiny_clip, tmp_path):
    from indexes.image_encoders.clip import OpenClipEncoder

    enc = OpenClipEncoder(str(tiny_clip.config), str(tmp_path / "gone.safetensors"))
    with pytest.raises(ModelUnavailable, match="not found"):
        enc.embed_texts(["x"])


def test_image_index_plumbing_with_open_clip(tiny_clip, tmp_path):
    from indexes.image_encoders.clip import OpenClipEncoder
    from indexes.images import ImageIndex
    from polymodal.errors import EmbedderMismatch

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, arr in enumerate(_photos()):
        Image.fromarray(arr).save(photos / f"p{i}.png")
    enc = OpenClipEncoder(str(tiny_clip.config), str(tiny_clip.checkpoint), cache_dir=tmp_path)
    with ImageIndex.open(tmp_path / "idx", enc) as idx:
        assert idx.index_folder(photos).added == 5 and idx.visual is None  # one space for CLIP
        hit = idx.search(image=str(photos / "p3.png"), k=1)[0]
        assert hit.path == str(photos / "p3.png") and hit.space == "joint" and hit.score > 0.999
        assert len(idx.search("a photo", k=3)) == 3
    with ImageIndex.open(tmp_path / "idx") as idx:  # rebuilt from the manifest's spec
        assert idx.encoder.name == enc.name
        assert idx.search(image=str(photos / "p1.png"), k=1)[0].path == str(photos / "p1.png")
    with pytest.raises(EmbedderMismatch):
        ImageIndex.open(tmp_path / "idx", "fake")
