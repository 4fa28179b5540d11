"""What a reader returns (`Extracted`: text + location marks) and the helpers every reader shares:
byte reading, text decoding, the binary test, the zip-bomb guard, Markdown tables and headings."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import UnsupportedFile

__all__ = [
    "MARKDOWN_TYPES",
    "Mark",
    "Extracted",
    "ReadOptions",
    "Builder",
    "looks_binary",
    "decode_text",
    "read_bytes",
    "read_plain",
    "check_zip",
    "markdown_table",
    "heading_marks",
    "location_at",
    "describe_location",
]


# document types whose text is Markdown: chunked by section, chunks located by heading path
MARKDOWN_TYPES = frozenset({"md", "markdown", "html", "htm", "xhtml", "docx", "pptx", "epub"})


@dataclass(frozen=True)
class Mark:
    """From offset `start` of the text on, the location keys in `meta` hold (page, slide, sheet,
    row, record, heading). With `section`, no chunk spans this offset (pages, slides, rows)."""

    start: int
    meta: dict[str, Any]
    section: bool = False


@dataclass
class Extracted:
    """A file's text and where in the file each part came from. `markdown`: headings are `#` lines
    (their heading path is located when the text is chunked)."""

    text: str
    marks: list[Mark] = field(default_factory=list)
    markdown: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "OCR on 3 pages"


@dataclass
class ReadOptions:
    max_bytes: int = 50 * 2**20
    json_text_field: str = "text"  # the field of a .json/.jsonl record that holds its text
    ocr: bool = True  # read scanned PDF pages and images with Tesseract
    ocr_languages: str = "chi_sim+eng"
    show_progress: bool = False


class Builder:
    """Appends parts to a text while recording marks at their exact offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.marks: list[Mark] = []
        self._pending: list[tuple[dict[str, Any], bool]] = []  # marks for the next part added
        self.size = 0

    def mark(self, section: bool = True, **meta: Any) -> None:
        self._pending.append((meta, section))

    def add(self, text: str, sep: str = "\n\n") -> None:
        if not text.strip():
            return
        if self.size:
            self.parts.append(sep)
            self.size += len(sep)
        self.marks.extend(Mark(self.size, meta, section) for meta, section in self._pending)
        self._pending = []
        self.parts.append(text)
        self.size += len(text)

    def build(self, markdown: bool = False) -> Extracted:
        text = "".join(self.parts)
        return Extracted(text, self.marks, markdown)


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


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise UnsupportedFile("permission denied") from None
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}") from None


def read_plain(path: Path) -> str:
    data = read_bytes(path)
    if looks_binary(data):
        raise UnsupportedFile("binary content, not text")
    return decode_text(data)


def check_zip(path: Path, kind: str, limit: int = 512 * 2**20) -> None:
    """Refuse a corrupt zip container or a zip bomb (declared uncompressed size over `limit`)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if sum(i.file_size for i in zf.infolist()) > limit:
                raise UnsupportedFile(f"{kind} expands to more than {limit // 2**20} MB")
    except zipfile.BadZipFile:
        raise UnsupportedFile(f"corrupt {kind} (not a zip container)") from None
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}") from None


def _cell(value: Any) -> str:
    return " ".join(str("" if value is None else value).split()).replace("|", "\\|")


def markdown_table(rows: list[list[Any]]) -> str:
    """A Markdown table; the first row is the header. Merged cells repeat (as readers give them)."""
    rows = [[_cell(c) for c in r] for r in rows if any(_cell(c) for c in r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def heading_marks(text: str) -> list[Mark]:
    """A mark at each Markdown heading with its path ("Specs > Latency")."""
    path: list[tuple[int, str]] = []
    out = []
    for m in _HEADING.finditer(text):
        level = len(m.group(1))
        path = [p for p in path if p[0] < level] + [(level, m.group(2).strip())]
        out.append(Mark(m.start(), {"heading": " > ".join(t for _, t in path)}))
    return out


def location_at(marks: list[Mark], start: int, end: int) -> dict[str, Any]:
    """The location of text[start:end]: every key as of `start`; a number that changes before
    `end` (a chunk over two pages) adds `<key>_end`."""
    at: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for m in sorted(marks, key=lambda m: m.start):
        if m.start <= start:
            at.update(m.meta)
        if m.start < end:
            last.update(m.meta)
    for key, value in last.items():
        if isinstance(value, int) and key in at and at[key] != value:
            at[f"{key}_end"] = value
    return at


def describe_location(where: dict[str, Any]) -> str:
    """A location for people: "p. 12", "pp. 12-13", "slide 3", "sheet Sales, row 5", "§ Specs > Latency"."""
    parts: list[str] = []
    if "page" in where:
        end = where.get("page_end")
        parts.append(f"pp. {where['page']}-{end}" if end else f"p. {where['page']}")
    for key in ("slide", "chapter"):
        if key in where:
            end = where.get(f"{key}_end")
            parts.append(f"{key} {where[key]}" + (f"-{end}" if end else ""))
    if "sheet" in where:
        parts.append(f"sheet {where['sheet']}")
    for key in ("row", "record"):
        if key in where:
            parts.append(f"{key} {where[key]}")
    if where.get("heading"):
        parts.append(f"§ {where['heading']}")
    return ", ".join(parts)
