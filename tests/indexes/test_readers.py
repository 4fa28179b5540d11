"""Readers on ordinary documents (the mixed folder of indexes/readers/samples.py): what each keeps
(headings, tables, body order), the locations each chunk carries, OCR, and bad input."""

import os
import zipfile

import pytest

from indexes.ingest import ingest_paths
from indexes.readers import ReadOptions, read_file
from indexes.readers.samples import PDF_FACT, PDF_FACT_PAGE, build_mixed_folder, render_scan, text_pdf
from indexes.text import TextIndex
from polymodal.config import Config
from polymodal.errors import UnsupportedFile


def _config(**kb):
    c = Config()
    c.embedder.model = "hash"
    for k, v in kb.items():
        setattr(c.kb, k, v)
    return c


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return build_mixed_folder(tmp_path_factory.mktemp("mixed"))


def test_html_keeps_main_content_headings_and_table_rows(mixed):
    text = read_file(mixed["specs.html"]).text
    assert text.startswith("# Edge inference specs") and "\n## Latency\n" in text
    assert "| Lite0 | 12 ms | 5 MB |" in text  # cells stay apart, the row stays whole
    assert "Login" not in text and "Copyright" not in text  # navigation and footer dropped


def test_docx_reads_in_body_order_with_headings_and_tables(mixed):
    text = read_file(mixed["guide.docx"]).text
    order = ["# Deployment guide", "## Supported boards", "| Pi Zero 2 | 512 MB | LiteRT int8 |", "less than 512 MB"]
    order.append("## Updates")
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)


def test_pptx_xlsx_csv_jsonl_epub_are_read_with_locations(mixed):
    deck = read_file(mixed["review.pptx"])
    assert [m.meta["slide"] for m in deck.marks] == [1, 2, 3]
    assert "| North | 18% |" in deck.text and "Speaker notes for slide 2." in deck.text
    book = read_file(mixed["boards.xlsx"])
    row = next(m for m in book.marks if m.meta == {"sheet": "Boards", "row": 4})
    assert book.text[row.start :].startswith("Board: Jetson Nano | RAM: 4 GB | Price: 99 | Notes: has a GPU")
    assert {m.meta["sheet"] for m in book.marks} == {"Boards", "Sites"}
    assert "Board: Pi 4 | RAM: 4 GB" in read_file(mixed["boards.csv"]).text
    notes = read_file(mixed["notes.jsonl"])
    assert notes.text == "Gateway rebooted after a storm.\n\nLens cleaned." and notes.marks[1].meta["record_id"] == "n2"
    with pytest.raises(UnsupportedFile, match="body"):
        read_file(mixed["notes.jsonl"], ReadOptions(json_text_field="body"))
    epub = read_file(mixed["field-notes.epub"])
    assert epub.text.startswith("# Setup") and [m.meta["chapter"] for m in epub.marks] == [1, 2]


def test_pdf_pages_are_marked_and_reach_hits_and_chunks_exactly(mixed, tmp_path):
    pdf = read_file(mixed["manual.pdf"])
    assert [m.meta["page"] for m in pdf.marks] == list(range(1, 21))
    report = ingest_paths(
        tmp_path / "kb",
        [mixed["manual.pdf"], mixed["boards.xlsx"], mixed["guide.docx"], mixed["review.pptx"]],
        config=_config(),
        show_progress=False,
    )
    assert report.ok, report.files
    with TextIndex.open(tmp_path / "kb") as kb:
        hit = kb.search("calibration constant thermal sensor 4417", k=1, mode="bm25")[0]
        assert hit.location == {"page": PDF_FACT_PAGE} and hit.metadata["page"] == PDF_FACT_PAGE
        assert PDF_FACT in " ".join(hit.text.split())
        stored = kb.get_by_ids([hit.doc_id])[0].text
        assert stored[hit.start : hit.end] == hit.text  # offsets into the stored text stay exact
        for h in kb.search("board revision operators", k=10, mode="bm25"):  # no chunk spans two pages
            assert "page_end" not in h.location and h.text.count("Chapter") <= 3
        row = kb.search("Jetson Nano GPU price", k=1, mode="bm25")[0]
        assert row.location == {"sheet": "Boards", "row": 4}
        assert row.text == "Board: Jetson Nano | RAM: 4 GB | Price: 99 | Notes: has a GPU"  # one row, with header
        docx_hit = kb.search("firmware signed over the air", k=1, mode="bm25")[0]
        assert docx_hit.location == {"heading": "Deployment guide > Updates"}
        slide = kb.search("greenhouse pilots water", k=1, mode="bm25")[0]
        assert slide.location["slide"] == 2 and slide.location["heading"] == "Field results"


@pytest.mark.slow
def test_scanned_image_and_pdf_page_are_read_by_ocr(mixed, tmp_path):
    png = read_file(mixed["scan.png"])
    assert "Edge inference at 12 ms" in png.text and "边缘计算" in png.text and png.notes == ["OCR"]
    scan = read_file(mixed["scan.pdf"])
    assert "Edge inference" in scan.text and "量化模型" in scan.text
    assert scan.marks[0].meta == {"page": 1} and scan.notes == ["OCR on 1 page(s)"]
    report = ingest_paths(tmp_path / "kb", [mixed["scan.png"]], config=_config(), show_progress=False)
    assert report.count("added") == 1
    with TextIndex.open(tmp_path / "kb") as kb:
        assert kb.search("边缘计算", k=1, mode="bm25")[0].source.endswith("scan.png")
    blank = tmp_path / "blank.png"
    render_scan([]).save(blank)
    with pytest.raises(UnsupportedFile, match="no text"):
        read_file(blank)


def test_bad_files_of_the_new_formats_are_skipped_in_one_line_and_lose_nothing(mixed, tmp_path):
    kb = tmp_path / "kb"
    ingest_paths(kb, [mixed["boards.csv"]], config=_config(), show_progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    text_pdf(bad / "locked.pdf", ["A secret page about payroll."], password="hunter2")
    for name in ("deck.pptx", "sheet.xlsx", "book.epub"):
        (bad / name).write_bytes(b"PK\x03\x04 not really a zip")
    with zipfile.ZipFile(bad / "bomb.xlsx", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", b"\0" * (600 * 2**20))
    (bad / "records.json").write_text('{"text": "unterminated', encoding="utf-8")
    (bad / "deep.json").write_text("[" * 100_000, encoding="utf-8")
    (bad / "latin.csv").write_bytes("caf\xe9;na\xefve\n\x80\x81;x\n".encode("latin-1"))
    (bad / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    report = ingest_paths(kb, [bad], config=_config(), show_progress=False)
    reasons = {os.path.basename(f.path): f.reason for f in report.files if f.status == "skipped"}
    assert "encrypted PDF" in reasons["locked.pdf"]
    assert "corrupt PPTX" in reasons["deck.pptx"] and "corrupt XLSX" in reasons["sheet.xlsx"]
    assert "corrupt EPUB" in reasons["book.epub"] and "512 MB" in reasons["bomb.xlsx"]
    assert "malformed JSON" in reasons["records.json"] and "malformed JSON" in reasons["deep.json"]
    assert "encoding" in reasons["latin.csv"] and "image" in reasons["photo.png"]
    assert len(reasons) == 9 and all("\n" not in r for r in reasons.values())
    with TextIndex.open(kb) as index:
        assert index.count() == 1


def test_json_text_field_is_configurable(tmp_path):
    (tmp_path / "faq.json").write_text('{"items": [{"id": 7, "answer": "Reboot the gateway."}]}', encoding="utf-8")
    got = read_file(tmp_path / "faq.json", ReadOptions(json_text_field="answer"))
    assert got.text == "Reboot the gateway." and got.marks[0].meta == {"record": 1, "record_id": 7}
