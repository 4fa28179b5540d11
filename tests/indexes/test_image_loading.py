"""Safe image reading: orientation, colour modes, first frames, and one-line reasons for bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from indexes.image_encoders.loading import as_pil, is_image_path, load_image
from polymodal.errors import UnsupportedFile


def _jpeg_with_orientation(path, orientation: int) -> None:
    # left half red, right half blue, 40x20 as stored
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_applied(tmp_path):
    p = tmp_path / "rotated.jpg"
    _jpeg_with_orientation(p, 6)  # "rotate 90 CW to display"
    li = load_image(p)
    assert (li.width, li.height) == (20, 40)
    assert li.image.size == (20, 40)
    top = np.asarray(li.image)[2, 10]
    bottom = np.asarray(li.image)[-3, 10]
    assert top[0] > 200 and top[2] < 60  # the red half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_rgba_is_composited_on_white_and_grey_becomes_rgb(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "a.png")
    assert np.asarray(load_image(tmp_path / "a.png").image)[0, 0].tolist() == [255, 255, 255]
    Image.new("L", (8, 8), 77).save(tmp_path / "g.png")
    g = load_image(tmp_path / "g.png").image
    assert g.mode == "RGB" and np.asarray(g)[0, 0].tolist() == [77, 77, 77]


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    out = np.asarray(load_image(tmp_path / "deep.png").image)[:, :, 0]
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 30


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in ((0, 200, 0), (200, 0, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    px = np.asarray(load_image(tmp_path / "anim.gif").image)[5, 5]
    assert px[1] > 150 and px[0] < 50


@pytest.mark.parametrize("fmt,ext", [("WEBP", "webp"), ("BMP", "bmp"), ("PNG", "png"), ("JPEG", "jpeg")])
def test_supported_formats(tmp_path, fmt, ext):
    Image.new("RGB", (30, 20), (0, 0, 255)).save(tmp_path / f"x.{ext}", fmt)
    li = load_image(tmp_path / f"x.{ext}")
    assert (li.width, li.height, li.format) == (30, 20, fmt) and np.asarray(li.image)[10, 10, 2] > 200


def test_content_hash_is_of_the_bytes(tmp_path):
    import hashlib

    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    assert load_image(tmp_path / "x.png").sha256 == hashlib.sha256((tmp_path / "x.png").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("notes.jpg", b"hello, I am text", "not an image"),
        ("empty.png", b"", "empty file"),
    ],
)
def test_non_images_give_one_line_reasons(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UnsupportedFile) as err:
        load_image(tmp_path / name)
    assert reason in str(err.value) and name in str(err.value) and "\n" not in str(err.value)


def test_truncated_jpeg_is_rejected(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UnsupportedFile, match="truncated"):
        load_image(tmp_path / "cut.jpg")


def test_decompression_bomb_is_rejected(tmp_path, monkeypatch):
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 90,000 px is a bomb now (warning range too)
    with pytest.raises(UnsupportedFile, match="decompression-bomb"):
        load_image(tmp_path / "big.png")
    Image.new("RGB", (120, 120)).save(tmp_path / "warn.png")  # 14,400 px: Pillow only warns
    with pytest.raises(UnsupportedFile, match="decompression-bomb"):
        load_image(tmp_path / "warn.png")


def test_as_pil_accepts_arrays_and_rejects_bad_shapes():
    assert as_pil(np.zeros((5, 6, 3), np.uint8)).size == (6, 5)
    f = as_pil(np.ones((4, 4), np.float32))  # float in [0, 1], greyscale
    assert f.mode == "RGB" and np.asarray(f)[0, 0].tolist() == [255, 255, 255]
    assert as_pil(np.zeros((4, 4, 4), np.uint8)).mode == "RGB"
    with pytest.raises(UnsupportedFile):
        as_pil(np.zeros((4, 4, 7), np.uint8))


def test_extensions():
    from pathlib import Path

    assert is_image_path(Path("a/B.JPG")) and is_image_path(Path("x.webp")) and not is_image_path(Path("x.txt"))
