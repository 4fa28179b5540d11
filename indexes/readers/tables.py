"""Rows and records: .csv (stdlib), .xlsx (openpyxl, extra `docs`), .json/.jsonl (a configured
text field). Every table row is its own section, written with its header ("Model: Lite0 |
Latency: 12 ms") and marked with its sheet and row, so a chunk is one row and says where it is."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Iterable

from indexes.readers.base import Builder, Extracted, ReadOptions, check_zip, read_plain
from polymodal.errors import UnsupportedFile

__all__ = ["read_csv", "read_xlsx", "read_json", "read_jsonl"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _add_rows(b: Builder, rows: Iterable[tuple[int, list[Any]]], **where: Any) -> int:
    """The first non-empty row is the header; each later row becomes "header: value | ..."."""
    header: list[str] | None = None
    n = 0
    for number, raw in rows:
        cells = [_text(c) for c in raw]
        if not any(cells):
            continue
        if header is None:
            header = [h or f"column {i + 1}" for i, h in enumerate(cells)]
            continue
        names = header + [f"column {i + 1}" for i in range(len(header), len(cells))]
        b.mark(**where, row=number)
        b.add(" | ".join(f"{h}: {c}" for h, c in zip(names, cells) if c), sep="\n")
        n += 1
    if header is not None and n == 0:  # a lone header row is still content
        b.mark(**where, row=1)
        b.add(" | ".join(header), sep="\n")
    return n


def read_csv(path: Path, options: ReadOptions) -> Extracted:
    text = read_plain(path)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise UnsupportedFile(f"malformed CSV ({exc})") from None
    b = Builder()
    _add_rows(b, enumerate(rows, 1))
    return b.build()


def read_xlsx(path: Path, options: ReadOptions) -> Extracted:
    check_zip(path, "XLSX")
    try:
        import openpyxl
    except ImportError:
        raise UnsupportedFile("reading .xlsx needs the 'docs' extra: pip install 'polymodal[docs]'") from None
    b = Builder()
    try:
        book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
        try:
            for sheet in book.worksheets:
                _add_rows(b, enumerate((list(r) for r in sheet.iter_rows(values_only=True)), 1), sheet=sheet.title)
        finally:
            book.close()
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise UnsupportedFile(f"corrupt XLSX ({type(exc).__name__})") from None
    except Exception as exc:  # openpyxl's InvalidFileException, lxml errors
        raise UnsupportedFile(f"corrupt XLSX ({type(exc).__name__})") from None
    return b.build()


def _add_record(b: Builder, number: int, record: Any, field: str) -> bool:
    if isinstance(record, str):
        text = record
    elif isinstance(record, dict) and isinstance(record.get(field), str):
        text = record[field]
    else:
        return False
    where: dict[str, Any] = {"record": number}
    if isinstance(record, dict) and isinstance(record.get("id"), (str, int)):
        where["record_id"] = record["id"]
    b.mark(**where)
    b.add(text.strip())
    return True


def _no_field(field: str) -> UnsupportedFile:
    return UnsupportedFile(f"no record has a text field '{field}' (set [kb] json_text_field)")


def read_json(path: Path, options: ReadOptions) -> Extracted:
    """A list of records (or one record, or {"...": [records]}): each record's text field."""
    try:
        data = json.loads(read_plain(path))
    except (ValueError, RecursionError) as exc:
        raise UnsupportedFile(f"malformed JSON ({type(exc).__name__})") from None
    if isinstance(data, dict) and options.json_text_field not in data:
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else data
    records = data if isinstance(data, list) else [data]
    b = Builder()
    if not sum(_add_record(b, i, r, options.json_text_field) for i, r in enumerate(records, 1)):
        raise _no_field(options.json_text_field)
    return b.build()


def read_jsonl(path: Path, options: ReadOptions) -> Extracted:
    """One record a line; a malformed line is skipped (and counted in the notes)."""
    text = read_plain(path)
    b = Builder()
    bad = found = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            bad += 1
            continue
        found += _add_record(b, number, record, options.json_text_field)
    if not found:
        if bad:
            raise UnsupportedFile(f"malformed JSON Lines ({bad} bad line(s), none readable)")
        raise _no_field(options.json_text_field)
    result = b.build()
    result.notes = [f"{bad} malformed line(s) skipped"] if bad else []
    return result
