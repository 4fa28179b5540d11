"""Photo signals beside the embedding: faces (the real BlazeFace model), path words (Chinese too),
EXIF date/camera/GPS with an offline place name, OCR when Tesseract is there, filters, and an index
from before the signals existed."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import skimage.data as sd
from PIL import Image, ImageDraw

from indexes.analyzer import analyze
from indexes.faces import FaceCounter
from indexes.image_encoders.loading import load_image
from indexes.images import ImageIndex
from indexes.photo_query import parse_dates
from indexes.photo_signals import ocr_status, path_words, read_exif, signal_document
from polymodal.errors import InputError


def save_photo(path: Path, arr: np.ndarray, taken: str = "", camera: tuple[str, str] = ("", ""), gps=None) -> Path:
    """A JPEG with EXIF as a camera writes it: DateTimeOriginal, Make/Model, GPS as degree rationals."""
    exif = Image.Exif()
    if camera[0]:
        exif[0x010F], exif[0x0110] = camera
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    if gps:
        lat, lon = gps
        g = exif.get_ifd(0x8825)
        g[1], g[3] = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
        for tag, v in ((2, abs(lat)), (4, abs(lon))):
            d, m = int(v), int((v - int(v)) * 60)
            g[tag] = (float(d), float(m), round((v - d - m / 60) * 3600, 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, "JPEG", quality=90, exif=exif)
    return path


def _small(arr: np.ndarray) -> Image.Image:
    im = Image.fromarray(arr)
    im.thumbnail((256, 256))
    return im


def test_faces_counted_on_the_astronaut_and_not_on_a_cup_of_coffee():
    counter = FaceCounter()
    faces = counter.detect(_small(sd.astronaut()))
    assert len(faces) == 1
    x0, y0, x1, y1, score = faces[0]
    assert score > 0.8 and 0.3 < x0 < x1 < 0.75 and y0 < y1 < 0.5  # her face, upper middle of the photo
    assert counter.detect(_small(sd.coffee())) == []


def test_path_words_split_names_and_keep_chinese_for_the_analyzer():
    root = Path("/home/me/Pictures")
    assert path_words(root / "beachTrip_2024" / "IMG_2291.jpg", root) == ["beach", "Trip", "2024", "2291"]
    words = path_words(root / "家庭" / "2023年春节" / "DSC0003.JPG", root)
    assert words == ["家庭", "2023", "年春节", "0003"]
    assert {"家庭", "春节", "2023"} <= set(analyze(" ".join(words)))
    assert "Pictures" not in path_words(root / "a" / "b.jpg", root)  # the library's own location


def test_exif_date_camera_and_gps_become_a_place(tmp_path):
    p = save_photo(
        tmp_path / "x.jpg", sd.coffee(), "2023:07:15 10:30:00", ("Canon", "Canon EOS 5D Mark IV"), (48.8584, 2.2945)
    )
    taken, camera, lat, lon = read_exif(load_image(p).exif)
    assert taken == "2023-07-15T10:30:00" and camera == "Canon EOS 5D Mark IV"
    assert lat == pytest.approx(48.8584, abs=1e-3) and lon == pytest.approx(2.2945, abs=1e-3)
    bare = save_photo(tmp_path / "bare.jpg", sd.coffee())
    assert read_exif(load_image(bare).exif) == ("", "", None, None)
    with ImageIndex.open(tmp_path / "idx", "fake", faces=False) as idx:
        idx.index_folder(tmp_path)
        hit = idx.search("Paris", k=1, mode="bm25")[0]
    assert "Paris" in hit.place.split(", ") and hit.place.endswith("France") and hit.taken_at.startswith("2023-07-15")


def test_dates_in_queries_become_ranges():
    today = date(2026, 12, 7)
    assert parse_dates("photos from last summer", today)[1:] == (
        ["from last summer"],
        "2026-06-01",
        "2026-08-31",
        (6, 7, 8),
    )
    rest, phrases, d0, d1, months = parse_dates("2023年的猫", today)
    assert (rest, d0, d1, months) == ("猫", "2023-01-01", "2023-12-31", ())
    assert parse_dates("去年夏天的海边", today)[2:] == ("2025-01-01", "2025-12-31", (6, 7, 8))
    assert parse_dates("beach in July 2022", today)[2:4] == ("2022-07-01", "2022-07-31")
    assert parse_dates("三月的樱花", today)[4] == (3,)  # a month alone: that month in any year
    assert parse_dates("a foal in a field", today) == ("a foal in a field", [], "", "", ())


@pytest.fixture
def library(tmp_path):
    """Six photos in named folders, dated by EXIF or by their folder name; one has a face."""
    root = tmp_path / "photos"
    save_photo(root / "beach trip 2024" / "DSC01.jpg", sd.coffee(), "2024:07:02 09:00:00")
    save_photo(root / "beach trip 2024" / "DSC02.jpg", sd.chelsea(), "2024:07:03 09:00:00")
    save_photo(root / "Camera Roll" / "IMG_1.jpg", sd.astronaut(), "2021:03:01 12:00:00", ("Apple", "iPhone 12"))
    save_photo(root / "Camera Roll" / "IMG_2.jpg", sd.rocket(), "2023:05:01 12:00:00", ("Apple", "iPhone 12"))
    save_photo(root / "家庭" / "2019年春节" / "DSC3.jpg", np.asarray(Image.fromarray(sd.camera()).convert("RGB")))
    save_photo(root / "misc" / "horse.jpg", np.asarray(Image.fromarray(sd.horse()).convert("RGB")))
    return root


def _names(hits) -> list[str]:
    return [Path(h.path).name for h in hits]


def test_filters_date_range_faces_and_folder(tmp_path, library):
    with ImageIndex.open(tmp_path / "idx", "fake") as idx:
        report = idx.index_folder(library)
        assert report.added == 6
        info = idx.info()["signals"]
        assert (info["with_faces"], info["with_date"], info["missing"]) == (2, 5, 0)  # astronaut + cameraman
        dated = idx.search("photo", k=6, filters={"date_from": "2023-01-01", "date_to": "2024-07-02"})
        assert sorted(_names(dated)) == ["DSC01.jpg", "IMG_2.jpg"]  # date_to is inclusive
        assert sorted(_names(idx.search("photo", k=6, filters={"has_faces": True}))) == ["DSC3.jpg", "IMG_1.jpg"]
        assert _names(idx.search("photo", k=6, folder=library / "Camera Roll", filters={"has_faces": True})) == [
            "IMG_1.jpg"
        ]
        assert _names(idx.search("x", k=6, filters={"date_from": "2030-01-01"})) == []
        with pytest.raises(InputError, match="date_from must be a date"):
            idx.search("x", filters={"date_from": "last tuesday"})
        with pytest.raises(InputError, match="unknown photo filter"):
            idx.search("x", filters={"colour": "red"})
        assert _names(idx.search("2019年春节", k=1, mode="bm25")) == ["DSC3.jpg"]  # date from the folder name


def test_filters_from_the_cli_json(tmp_path, library, capsys):
    from orchestrator.cli import main

    idx = str(tmp_path / "idx")
    assert main(["images", "index", str(library), "--index", idx, "--encoder", "fake", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["signals"]["with_faces"] == 2 and out["signals"]["ocr"] is False
    argv = ["images", "search", "photo", "--index", idx, "-k", "6", "--json"]
    assert main([*argv, "--from", "2021-01-01", "--to", "2021-12-31"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [Path(h["path"]).name for h in hits] == ["IMG_1.jpg"]
    assert (
        hits[0]["faces"] == 1
        and hits[0]["camera"] == "Apple iPhone 12"
        and hits[0]["taken_at"] == "2021-03-01T12:00:00"
    )
    assert main([*argv, "--no-faces", "--mode", "dense"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 4 and all(h["faces"] == 0 for h in out["hits"]) and out["mode"] == "dense"
    assert main([*argv, "--from", "not a date"]) != 0
    assert "date_from must be a date" in capsys.readouterr().out


def test_an_index_from_before_the_signals_opens_and_is_filled_in(tmp_path, library):
    path = tmp_path / "idx"
    with ImageIndex.open(path, "fake") as idx:
        idx.index_folder(library)
    conn = sqlite3.connect(path / "index.sqlite")  # what the previous version wrote: no signal tables
    conn.executescript("DROP TABLE photo_signals; DROP TABLE photo_fts;")
    conn.close()
    with ImageIndex.open(path, read_only=True) as old:
        assert old.has_signals is False and old.info()["signals"]["missing"] == 6
        assert len(old.search("red", k=3)) == 3  # the embedding alone
        with pytest.raises(InputError, match="run 'polymodal images index FOLDER'"):
            old.search("red", filters={"has_faces": True})
    with ImageIndex.open(path) as idx:
        assert "6 photo(s) have no signals" in idx.signal_info()["note"]
        report = idx.index_folder(library)
        assert (report.added, report.updated, report.signals_added) == (0, 0, 6)  # no re-embedding
        assert "6 given photo signals" in report.summary()
        assert idx.signal_info()["missing"] == 0
        assert sorted(_names(idx.search("x", k=6, filters={"has_faces": True}))) == ["DSC3.jpg", "IMG_1.jpg"]
        again = idx.index_folder(library)
        assert (again.unchanged, again.signals_added) == (6, 0)


def test_deleting_a_photo_drops_its_signals(tmp_path, library):
    with ImageIndex.open(tmp_path / "idx", "fake") as idx:
        idx.index_folder(library)
        idx.delete([library / "beach trip 2024"])
        assert idx.search("beach trip", k=5, mode="bm25") == []
        n = idx._conn.execute("SELECT COUNT(*) FROM photo_fts").fetchone()[0]
        assert n == idx.count() == 4


def test_ocr_reads_text_when_tesseract_is_there_and_says_so_when_not(tmp_path):
    img = Image.new("RGB", (900, 500), (250, 248, 240))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(["DAILY MENU", "Espresso 3.50", "Croissant 2.20", "Orange juice 4.00"]):
        draw.text((60, 40 + 110 * i), line, fill=(10, 10, 10), font_size=64)
    folder = tmp_path / "photos"
    folder.mkdir()
    img.save(folder / "board.jpg", quality=95)
    Image.fromarray(sd.coffee()).save(folder / "cup.jpg")
    usable, why = ocr_status()
    with ImageIndex.open(tmp_path / "idx", "fake", ocr=True, faces=False) as idx:
        idx.index_folder(folder)
        rows = dict(idx._conn.execute("SELECT i.path, s.ocr FROM photo_signals s JOIN images i ON i.id = s.image_id"))
        info = idx.signal_info()
        if usable:
            hit = idx.search("croissant", k=1, mode="bm25")[0]
            assert Path(hit.path).name == "board.jpg" and "Espresso" in hit.text
            assert rows[str(folder / "cup.jpg")] == "none"  # no text-like strokes: Tesseract not run
        else:
            assert (
                set(rows.values()) == {"unavailable"} and info["ocr_available"] is False and info["ocr_reason"] == why
            )


def test_signal_document_carries_dates_in_both_languages_and_the_face_tokens():
    from indexes.photo_signals import FACE_TOKEN, PhotoSignals

    sig = PhotoSignals(faces=2, taken_at="2023-07-15T10:00:00", place="Paris", text="DAILY MENU")
    words, reserved, text = signal_document(sig, ["cat"])
    assert text == "DAILY MENU"
    assert {"2023", "2023年", "July", "7月", "summer", "夏天", "Paris", "cat"} <= set(words.split())
    assert reserved == [FACE_TOKEN, "faces2"]
