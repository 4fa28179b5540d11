"""OCR with Tesseract (Debian tesseract-ocr + language packs; pytesseract, extra `docs`): images
put into a knowledge base, and PDF pages without a text layer. Words under a confidence floor are
dropped, so a photo without text gives no text rather than noise."""

from __future__ import annotations

import importlib.util
import re
import shutil
import warnings
from functools import lru_cache
from pathlib import Path

from indexes.readers.base import Builder, Extracted, ReadOptions
from polymodal.errors import UnsupportedFile

__all__ = ["ocr_available", "ocr_status", "ocr_image", "read_image", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MIN_CONFIDENCE = 50  # Tesseract's per-word confidence, 0-100
MAX_PIXELS = 80_000_000  # larger images are refused (decompression bombs)
_CJK_GAP = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]) (?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")


@lru_cache(maxsize=1)
def ocr_status() -> tuple[bool, str]:
    """(usable, why): OCR needs the `pytesseract` package and the `tesseract` program."""
    if importlib.util.find_spec("pytesseract") is None:
        return False, "pytesseract is not installed (pip install 'polymodal[docs]' or 'polymodal[photos]')"
    if shutil.which("tesseract") is None:
        return False, "the tesseract program is not installed (apt-get install tesseract-ocr)"
    return True, "tesseract via pytesseract"


def ocr_available() -> bool:
    """pytesseract importable and the tesseract binary on PATH."""
    return ocr_status()[0]


def ocr_image(image, languages: str = "chi_sim+eng") -> str:
    """The text Tesseract reads in a PIL image, line by line, confident words only."""
    import pytesseract

    image = image.convert("L") if image.mode not in ("L", "RGB") else image
    if min(image.size) < 600:  # small renders read better upscaled (Tesseract expects ~300 dpi)
        scale = 600 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    try:
        data = pytesseract.image_to_data(image, lang=languages, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError as exc:  # e.g. a language pack that is not installed
        detail = str(exc.message or exc).strip().splitlines()
        raise UnsupportedFile(f"OCR failed: {(detail[0] if detail else str(exc.status))[:160]}") from None
    lines: dict[tuple[int, int, int], list[str]] = {}
    for word, conf, *key in zip(data["text"], data["conf"], data["block_num"], data["par_num"], data["line_num"]):
        if word.strip() and float(conf) >= MIN_CONFIDENCE:
            lines.setdefault(tuple(key), []).append(word.strip())
    text = "\n".join(" ".join(words) for words in lines.values())
    return _CJK_GAP.sub("", _CJK_GAP.sub("", text))  # Tesseract spaces CJK characters apart


def read_image(path: Path, options: ReadOptions) -> Extracted:
    from PIL import Image

    if not options.ocr:
        raise UnsupportedFile("image: OCR is off ([kb] ocr = false)")
    if not ocr_available():
        raise UnsupportedFile("image needs OCR: install tesseract-ocr and the 'docs' extra (pytesseract)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise UnsupportedFile(f"image too large ({img.width}x{img.height} pixels)")
                img.load()
                text = ocr_image(img, options.ocr_languages)
    except UnsupportedFile:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnsupportedFile("image too large (decompression bomb guard)") from None
    except PermissionError:
        raise UnsupportedFile("permission denied") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedFile(f"corrupt image ({type(exc).__name__})") from None
    b = Builder()
    b.add(text.strip())
    result = b.build()
    result.notes = ["OCR"]
    return result
