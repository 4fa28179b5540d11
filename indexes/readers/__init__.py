"""Turn files into text with locations: one reader per suffix, each returning `Extracted` (the
text, and `Mark`s saying which page, slide, sheet/row, record or heading each part came from).

    plain text, Markdown   base.py       HTML, EPUB       web.py (trafilatura)
    DOCX, PPTX             office.py     PDF              pdf.py (pypdf; OCR for scans)
    CSV, XLSX, JSON(L)     tables.py     images           ocr.py (Tesseract)

Every failure is an `UnsupportedFile` with a one-line reason (corrupt, encrypted, binary, too
large, zip bomb, empty, unknown encoding, unreadable), so ingestion can skip the file and carry on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from indexes.readers.base import (
    MARKDOWN_TYPES,
    Builder,
    Extracted,
    Mark,
    ReadOptions,
    decode_text,
    describe_location,
    location_at,
    looks_binary,
    read_plain,
)
from indexes.readers.ocr import IMAGE_SUFFIXES, read_image
from indexes.readers.office import read_docx, read_pptx
from indexes.readers.pdf import read_pdf
from indexes.readers.tables import read_csv, read_json, read_jsonl, read_xlsx
from indexes.readers.web import read_epub, read_html
from polymodal.errors import UnsupportedFile

__all__ = [
    "READERS",
    "MARKDOWN_TYPES",
    "Extracted",
    "Mark",
    "ReadOptions",
    "read_file",
    "decode_text",
    "looks_binary",
    "location_at",
    "describe_location",
]

Reader = Callable[[Path, ReadOptions], Extracted]


def read_text(path: Path, options: ReadOptions) -> Extracted:
    b = Builder()
    b.add(read_plain(path))
    return b.build()


def read_markdown(path: Path, options: ReadOptions) -> Extracted:
    text = read_plain(path)
    b = Builder()
    b.add(text)
    return b.build(markdown=True)


READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".text": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".pptx": read_pptx,
    ".xlsx": read_xlsx,
    ".csv": read_csv,
    ".epub": read_epub,
    ".json": read_json,
    ".jsonl": read_jsonl,
    **{suffix: read_image for suffix in IMAGE_SUFFIXES},
}


def read_file(path: Path, options: ReadOptions | None = None) -> Extracted:
    """Text and locations of `path`, or UnsupportedFile with the reason."""
    options = options or ReadOptions()
    suffix = path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise UnsupportedFile(
            f"unsupported file type '{suffix or path.name}' (supported: {', '.join(sorted(READERS))})"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsupportedFile(f"cannot stat: {exc.strerror or exc}") from None
    if size == 0:
        raise UnsupportedFile("empty file")
    if size > options.max_bytes:
        raise UnsupportedFile(
            f"too large ({size / 2**20:.0f} MB > {options.max_bytes / 2**20:.0f} MB limit; "
            "raise [kb] max_file_mb to ingest it)"
        )
    extracted = reader(path, options)
    if not extracted.text.strip():
        raise UnsupportedFile("no text content")
    return extracted
