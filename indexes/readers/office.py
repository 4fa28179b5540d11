"""DOCX (python-docx, body order: paragraphs and tables as they appear, heading styles as `#`
headings) and PPTX (python-pptx, extra `docs`: one section per slide, marked `slide`)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from indexes.readers.base import Builder, Extracted, ReadOptions, check_zip, markdown_table
from polymodal.errors import UnsupportedFile

__all__ = ["read_docx", "read_pptx"]

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)


def _open_error(kind: str, exc: Exception) -> UnsupportedFile:
    return UnsupportedFile(f"corrupt {kind} ({type(exc).__name__})")


def _paragraph_markdown(p) -> str:
    text = p.text.strip()
    if not text:
        return ""
    style = (p.style.name if p.style is not None else "") or ""
    if style == "Title":
        return "# " + text
    m = _HEADING_STYLE.match(style)
    if m:
        return "#" * min(6, int(m.group(1))) + " " + text
    if style.startswith("List"):
        return "- " + text
    return text


def _table_rows(table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def read_docx(path: Path, options: ReadOptions) -> Extracted:
    check_zip(path, "DOCX")
    try:
        import docx
        from docx.table import Table
    except ImportError:  # pragma: no cover - core dependency
        raise UnsupportedFile("python-docx is not installed") from None
    try:
        document = docx.Document(str(path))
        b = Builder()
        for block in document.iter_inner_content():
            b.add(markdown_table(_table_rows(block)) if isinstance(block, Table) else _paragraph_markdown(block))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _open_error("DOCX", exc) from None
    except Exception as exc:  # python-docx raises its own PackageNotFoundError etc.
        raise _open_error("DOCX", exc) from None
    return b.build(markdown=True)


def _shape_texts(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    out: list[str] = []
    if shape.has_table:
        out.append(markdown_table([[c.text for c in row.cells] for row in shape.table.rows]))
    elif shape.has_text_frame:
        out.append("\n".join(p.text for p in shape.text_frame.paragraphs if p.text.strip()))
    elif shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        for child in shape.shapes:
            out.extend(_shape_texts(child))
    return out


def read_pptx(path: Path, options: ReadOptions) -> Extracted:
    """Each slide: its title as a `##` heading, its text boxes and tables, then its notes."""
    check_zip(path, "PPTX")
    try:
        from pptx import Presentation
    except ImportError:
        raise UnsupportedFile("reading .pptx needs the 'docs' extra: pip install 'polymodal[docs]'") from None
    try:
        deck = Presentation(str(path))
        b = Builder()
        for n, slide in enumerate(deck.slides, 1):
            title = slide.shapes.title
            parts = [f"## {title.text.strip()}"] if title is not None and title.text.strip() else []
            for shape in slide.shapes:
                if title is None or shape.shape_id != title.shape_id:
                    parts.extend(t for t in _shape_texts(shape) if t.strip())
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    parts.append(f"Notes: {notes}")
            b.mark(slide=n)
            b.add("\n\n".join(parts))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _open_error("PPTX", exc) from None
    except Exception as exc:  # python-pptx's PackageNotFoundError, lxml errors
        raise _open_error("PPTX", exc) from None
    return b.build(markdown=True)
