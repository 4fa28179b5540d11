"""PDF (pypdf): one section per page, marked `page` (1-based), so a citation can say "p. 12".
A page without a text layer (a scan) is read by OCR from its images when Tesseract is there."""

from __future__ import annotations

import sys
from pathlib import Path

from indexes.readers.base import Builder, Extracted, ReadOptions
from indexes.readers.ocr import ocr_available, ocr_image
from polymodal.errors import UnsupportedFile

__all__ = ["read_pdf"]

_CORRUPT = (ValueError, KeyError, TypeError, AttributeError, OSError, IndexError, RecursionError, ZeroDivisionError)


def _open(path: Path):
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            # many PDFs are encrypted only against editing, with an empty password to open them
            try:
                opened = reader.decrypt("")
            except Exception:  # pypdf raises DependencyError for AES without `cryptography`, etc.
                opened = 0
            if not opened:
                raise UnsupportedFile("encrypted PDF (password-protected): remove the password to ingest it")
        return reader
    except UnsupportedFile:
        raise
    except (PdfReadError, *_CORRUPT) as exc:
        raise UnsupportedFile(f"corrupt PDF ({type(exc).__name__})") from None


def _page_images(page) -> list:
    try:
        return [img.image for img in page.images if img.image is not None]
    except Exception:  # an undecodable image filter: the page stays without text
        return []


def read_pdf(path: Path, options: ReadOptions) -> Extracted:
    from pypdf.errors import PdfReadError
    from tqdm import tqdm

    reader = _open(path)
    try:
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, *_CORRUPT) as exc:
        raise UnsupportedFile(f"corrupt PDF ({type(exc).__name__})") from None
    scanned = [i for i, text in enumerate(pages) if not text]
    notes: list[str] = []
    if scanned and options.ocr and ocr_available():
        show = options.show_progress and sys.stderr.isatty()
        for i in tqdm(scanned, desc=f"OCR {path.name}", unit="page", disable=not show, file=sys.stderr, leave=False):
            pages[i] = "\n".join(ocr_image(img, options.ocr_languages) for img in _page_images(reader.pages[i])).strip()
        notes.append(f"OCR on {len(scanned)} page(s)")
    b = Builder()
    for i, text in enumerate(pages):
        b.mark(page=i + 1)
        b.add(text)
    if not b.size:
        if scanned and not ocr_available():
            raise UnsupportedFile("PDF has no text layer (scanned?) and OCR is unavailable: install tesseract-ocr")
        raise UnsupportedFile("PDF has no extractable text (scanned images?)")
    result = b.build()
    result.notes = notes
    return result
