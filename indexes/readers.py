"""Turn files into text: .txt, .md, .html, .pdf (pypdf), .docx. One reader per suffix.

Every failure is an `UnsupportedFile` with a one-line reason (corrupt, binary, too large, empty,
unknown encoding, unreadable), so ingestion can skip the file and carry on.
"""

from __future__ import annotations

import html
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

from polymodal.errors import UnsupportedFile

__all__ = ["READERS", "read_file", "decode_text", "looks_binary"]


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters in the first 8 KiB (UTF-16 with a BOM is text)."""
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if b"\x00" in head:
        return True
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return bool(head) and ctrl / len(head) > 0.05


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030/Big5 when the result is
    mostly readable CJK text. Anything else is an unknown encoding."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for enc in ("gb18030", "big5"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if _plausible(text):
            return text
    raise UnsupportedFile("unknown text encoding (not UTF-8, UTF-16 or GB18030): convert it to UTF-8")


def _plausible(text: str) -> bool:
    """Decoded text is believable if nearly all of it is common CJK, ASCII or punctuation."""
    if not text:
        return True
    good = sum(
        1
        for c in text
        if c.isascii() or "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"
    )
    return good / len(text) > 0.97


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise UnsupportedFile("permission denied") from None
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}") from None


def read_plain(path: Path) -> str:
    data = _read_bytes(path)
    if looks_binary(data):
        raise UnsupportedFile("binary content, not text")
    return decode_text(data)


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "pre",
        "blockquote",
        "title",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def read_html(path: Path) -> str:
    raw = read_plain(path)
    parser = _TextExtractor()
    parser.feed(raw)
    parser.close()
    text = html.unescape("".join(parser.parts))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - core dependency
        raise UnsupportedFile("pypdf is not installed") from None
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            raise UnsupportedFile("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnsupportedFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError, IndexError, RecursionError) as exc:
        raise UnsupportedFile(f"corrupt PDF ({type(exc).__name__})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UnsupportedFile("PDF has no extractable text (scanned images?)")
    return text


def read_docx(path: Path) -> str:
    try:
        import docx
    except ImportError:  # pragma: no cover - core dependency
        raise UnsupportedFile("python-docx is not installed") from None
    try:
        with zipfile.ZipFile(path) as zf:
            # refuse zip bombs: the declared uncompressed size of the parts
            if sum(i.file_size for i in zf.infolist()) > 512 * 1024 * 1024:
                raise UnsupportedFile("DOCX expands to more than 512 MB")
        document = docx.Document(str(path))
    except UnsupportedFile:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnsupportedFile(f"corrupt DOCX ({type(exc).__name__})") from None
    except Exception as exc:  # python-docx raises its own PackageNotFoundError etc.
        raise UnsupportedFile(f"corrupt DOCX ({type(exc).__name__})") from None
    paras = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            paras.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(p for p in paras if p.strip())


READERS: dict[str, Callable[[Path], str]] = {
    ".txt": read_plain,
    ".text": read_plain,
    ".md": read_plain,
    ".markdown": read_plain,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}


def read_file(path: Path, max_bytes: int) -> str:
    """Text of `path`, or UnsupportedFile with the reason."""
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
    if size > max_bytes:
        raise UnsupportedFile(
            f"too large ({size / 2**20:.0f} MB > {max_bytes / 2**20:.0f} MB limit; raise [kb] max_file_mb to ingest it)"
        )
    text = reader(path)
    if not text.strip():
        raise UnsupportedFile("no text content")
    return text
