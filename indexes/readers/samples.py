"""A mixed folder of ordinary documents, built on the spot (for the reader tests and
`python -m bench readers`): an HTML page with navigation, headings and a table; a DOCX with
headings and a table between paragraphs; a 20-page PDF; a scan (PNG and image-only PDF) with
Chinese and English text; a PPTX; a spreadsheet (XLSX and CSV); JSON Lines; an EPUB.
Needs the `docs` extra (python-pptx, openpyxl, ebooklib) and a CJK font for the scan."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

__all__ = ["build_mixed_folder", "text_pdf", "render_scan", "SCAN_LINES", "PDF_FACT_PAGE", "PDF_FACT"]

PDF_FACT_PAGE = 12
PDF_FACT = "The calibration constant of the thermal sensor is 4417."
SCAN_LINES = ["边缘计算设备的功耗", "Edge inference at 12 ms", "量化模型 int8 quantized model"]
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)

HTML = """<!doctype html><html><head><title>Edge specs</title><style>body{font:14px sans-serif}</style></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/login">Login</a></nav>
<main><article><h1>Edge inference specs</h1>
<p>The Lite family of image classifiers runs on small boards without a graphics processor. This page
lists what each model costs on a two-core board, measured with the int8 build and batch size one.</p>
<h2>Latency</h2>
<p>Latency is the median of one hundred runs after ten warm-up runs.</p>
<table><tr><th>Model</th><th>Latency</th><th>Memory</th></tr>
<tr><td>Lite0</td><td>12 ms</td><td>5 MB</td></tr>
<tr><td>Lite1</td><td>18 ms</td><td>7 MB</td></tr>
<tr><td>Lite2</td><td>27 ms</td><td>9 MB</td></tr></table>
<h2>Power</h2>
<p>The board draws about two watts while classifying, and half a watt when idle between requests.</p>
</article></main>
<footer>Copyright 2026 Example Corp. All rights reserved. Privacy | Terms</footer></body></html>"""


def text_pdf(path: Path, pages: list[str], password: str = "") -> None:
    """A PDF with a text layer (Helvetica), one string a page, optionally password-protected."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        lines = textwrap.wrap(text, 90)
        ops = ["BT /F1 11 Tf 14 TL 50 740 Td"]
        ops += [f"({ln.replace('(', '[').replace(')', ']')}) Tj T*" for ln in lines]
        stream = DecodedStreamObject()
        stream.set_data(("\n".join(ops) + "\nET").encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    with open(path, "wb") as fh:
        writer.write(fh)


def render_scan(lines: list[str] = SCAN_LINES, size: int = 44):
    """A page image of `lines` (Chinese and English) as a scanner would give it: no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = next((f for f in CJK_FONTS if Path(f).exists()), None)
    if font_path is None:
        raise FileNotFoundError("no Noto CJK font (Debian fonts-noto-cjk) to render the scan")
    font = ImageFont.truetype(font_path, size)
    img = Image.new("L", (1000, 140 + len(lines) * size * 2), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((60, 70 + i * size * 2), line, font=font, fill=0)
    return img


def _pdf_pages() -> list[str]:
    topics = ["power budget", "thermal limits", "firmware updates", "sensor wiring", "radio range"]
    pages = []
    for n in range(1, 21):
        body = (
            f"Chapter {n}. This page of the field manual covers {topics[n % len(topics)]} for board revision {n}. "
            f"Operators should read the section on {topics[(n + 2) % len(topics)]} before installing units. "
        ) * 3
        pages.append(body + (PDF_FACT if n == PDF_FACT_PAGE else ""))
    return pages


def _docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Deployment guide", level=1)
    d.add_paragraph("This guide explains how the gateway is installed in a greenhouse.")
    d.add_heading("Supported boards", level=2)
    d.add_paragraph("The boards below were tested with the current firmware.")
    table = d.add_table(rows=1, cols=3)
    for cell, name in zip(table.rows[0].cells, ("Board", "RAM", "Runtime")):
        cell.text = name
    for row in (
        ("Pi 4", "4 GB", "LiteRT"),
        ("Pi Zero 2", "512 MB", "LiteRT int8"),
        ("Jetson Nano", "4 GB", "TensorRT"),
    ):
        for cell, value in zip(table.add_row().cells, row):
            cell.text = value
    d.add_paragraph("Boards with less than 512 MB of memory are not supported.")
    d.add_heading("Updates", level=2)
    d.add_paragraph("Firmware updates are signed and installed over the air every month.")
    d.save(path)


def _pptx(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slides = [
        ("Quarterly review", "Shipments of the gateway doubled this quarter."),
        ("Field results", "Greenhouse pilots cut water use by a fifth."),
        ("Next steps", "The solar-powered board ships in spring."),
    ]
    for n, (title, body) in enumerate(slides, 1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if n == 2:
            shape = slide.shapes.add_table(3, 2, Inches(1), Inches(4), Inches(6), Inches(1.5))
            for r, row in enumerate((("Site", "Water saved"), ("North", "18%"), ("South", "23%"))):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = value
        slide.notes_slide.notes_text_frame.text = f"Speaker notes for slide {n}."
    deck.save(path)


SHEET = [
    ["Board", "RAM", "Price", "Notes"],
    ["Pi 4", "4 GB", 55, "general purpose"],
    ["Pi Zero 2", "512 MB", 15, "battery friendly"],
    ["Jetson Nano", "4 GB", 99, "has a GPU"],
]


def _xlsx(path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Boards"
    for row in SHEET:
        sheet.append(row)
    other = book.create_sheet("Sites")
    for row in (["Site", "Units"], ["North greenhouse", 12], ["South greenhouse", 20]):
        other.append(row)
    book.save(path)


def _epub(path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("polymodal-sample")
    book.set_title("Field notes")
    book.set_language("en")
    chapters = []
    for n, (title, body) in enumerate((("Setup", "Mount the gateway high."), ("Care", "Clean the lens monthly.")), 1):
        ch = epub.EpubHtml(title=title, file_name=f"ch{n}.xhtml", lang="en")
        ch.content = f"<html><body><h1>{title}</h1><p>{body} Chapter {n} of the field notes.</p></body></html>"
        book.add_item(ch)
        chapters.append(ch)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)


def build_mixed_folder(folder: Path) -> dict[str, Path]:
    """Write the mixed folder; returns name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        name: folder / name
        for name in (
            "specs.html",
            "guide.docx",
            "manual.pdf",
            "scan.png",
            "scan.pdf",
            "review.pptx",
            "boards.xlsx",
            "boards.csv",
            "notes.jsonl",
            "field-notes.epub",
        )
    }
    files["specs.html"].write_text(HTML, encoding="utf-8")
    _docx(files["guide.docx"])
    text_pdf(files["manual.pdf"], _pdf_pages())
    scan = render_scan()
    scan.save(files["scan.png"])
    scan.convert("RGB").save(files["scan.pdf"], resolution=150)
    _pptx(files["review.pptx"])
    _xlsx(files["boards.xlsx"])
    with open(files["boards.csv"], "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(SHEET)
    records = [
        {"id": f"n{i}", "text": t} for i, t in enumerate(["Gateway rebooted after a storm.", "Lens cleaned."], 1)
    ]
    files["notes.jsonl"].write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    _epub(files["field-notes.epub"])
    return files
