"""What each reader extracts from ordinary documents, before (the hand-written readers of commit
BEFORE) and after (indexes/readers/), on the mixed folder indexes/readers/samples.py builds:
characters, table rows kept whole, headings kept as headings, page chrome dropped, locations
(page/slide/row marks), and reading time per format.

    python -m bench readers [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
import types
from pathlib import Path

BEFORE = "3388017"  # main before the readers package: indexes/readers.py
ROWS = {  # table rows of the samples, cell by cell
    "specs.html": [["Lite0", "12 ms", "5 MB"], ["Lite1", "18 ms", "7 MB"], ["Lite2", "27 ms", "9 MB"]],
    "guide.docx": [
        ["Pi 4", "4 GB", "LiteRT"],
        ["Pi Zero 2", "512 MB", "LiteRT int8"],
        ["Jetson Nano", "4 GB", "TensorRT"],
    ],
    "review.pptx": [["North", "18%"], ["South", "23%"]],
    "boards.xlsx": [["Pi 4", "4 GB", "55"], ["Pi Zero 2", "512 MB", "15"], ["Jetson Nano", "4 GB", "99"]],
    "boards.csv": [["Pi 4", "4 GB", "55"], ["Pi Zero 2", "512 MB", "15"], ["Jetson Nano", "4 GB", "99"]],
}
HEADINGS = {
    "specs.html": ["Edge inference specs", "Latency", "Power"],
    "guide.docx": ["Deployment guide", "Supported boards", "Updates"],
    "review.pptx": ["Quarterly review", "Field results", "Next steps"],
    "field-notes.epub": ["Setup", "Care"],
}
CHROME = {"specs.html": ["Login", "Copyright"]}
ORDER = {"guide.docx": ["Supported boards", "Jetson Nano", "less than 512 MB", "Updates"]}  # as in the body


def _old_readers() -> types.ModuleType | None:
    root = Path(__file__).resolve().parent.parent
    try:
        src = subprocess.run(
            ["git", "-C", str(root), "show", f"{BEFORE}:indexes/readers.py"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("readers_before")
    exec(compile(src, f"readers@{BEFORE}", "exec"), module.__dict__)
    return module


def _row_kept(text: str, cells: list[str]) -> bool:
    """All cells on one line, in order, each set apart from the next by a separator."""
    pattern = r"[^\S\n]*[|:;,\t][^\n]*?".join(re.escape(c) for c in cells)
    return any(re.search(pattern, line) for line in text.splitlines())


def _in_order(text: str, parts: list[str]) -> str:
    at = [text.find(p) for p in parts]
    return "yes" if -1 not in at and at == sorted(at) else "no"


def _ingest_seconds(path: Path, tmp: Path, config) -> float:
    """Read, chunk, embed and store one file into a fresh knowledge base."""
    from indexes.ingest import ingest_paths

    t0 = time.perf_counter()
    ingest_paths(tmp / f"kb-{path.name}", [path], config=config, show_progress=False)
    return time.perf_counter() - t0


def _measure(name: str, read) -> dict:
    t0 = time.perf_counter()
    try:
        got = read()
    except Exception as exc:  # the old readers raise UnsupportedFile for unknown types
        return {"error": str(exc).split(" (supported")[0]}
    seconds = time.perf_counter() - t0
    text, marks = (got, []) if isinstance(got, str) else (got.text, got.marks)
    rows = ROWS.get(name, [])
    heads = HEADINGS.get(name, [])
    return {
        "chars": len(text),
        "rows_whole": f"{sum(_row_kept(text, r) for r in rows)}/{len(rows)}" if rows else "",
        "headings": f"{sum(bool(re.search(rf'^#+ {re.escape(h)}$', text, re.M)) for h in heads)}/{len(heads)}"
        if heads
        else "",
        "chrome_kept": sum(w in text for w in CHROME.get(name, [])),
        "in_order": _in_order(text, ORDER[name]) if name in ORDER else "",
        "locations": len(marks),
        "seconds": round(seconds, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from indexes.embedders import get_embedder
    from indexes.readers import ReadOptions, read_file
    from indexes.readers.samples import build_mixed_folder
    from polymodal.config import Config

    config = Config()
    config.embedder.model = "all-MiniLM-L6-v2"
    get_embedder(config.embedder.model, config.embedder.backend).embed_documents(["warm up"])

    old = _old_readers()
    out: dict = {"before": BEFORE if old else "unavailable (no git history)", "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = build_mixed_folder(Path(tmp))
        for name, path in files.items():
            row = out["files"][name] = {}
            if old is not None:
                row["before"] = _measure(name, lambda: old.read_file(path, 50 * 2**20))
            row["after"] = _measure(name, lambda: read_file(path, ReadOptions()))
            row["after"]["ingest_seconds"] = round(_ingest_seconds(path, Path(tmp), config), 3)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return out
    print(f"readers before (commit {out['before']}) -> after, on the mixed folder (2 cores)")
    print("rows whole: table rows with their cells on one line, apart; chrome: nav/footer words kept;")
    print("order: body order kept; locs: page/slide/row/record marks; read s; ingest s: read+chunk+embed+store")
    print(
        f"{'file':18s} {'':6s} {'chars':>6s} {'rows whole':>10s} {'headings':>8s} {'chrome':>6s} {'order':>5s} "
        f"{'locs':>5s} {'read s':>7s} {'ingest s':>8s}"
    )
    for name, row in out["files"].items():
        for when in ("before", "after"):
            r = row.get(when)
            if r is None:
                continue
            if "error" in r:
                print(f"{name:18s} {when:6s} {r['error']}")
                continue
            print(
                f"{name:18s} {when:6s} {r['chars']:6d} {r['rows_whole']:>10s} {r['headings']:>8s} "
                f"{r['chrome_kept']:6d} {r['in_order']:>5s} {r['locations']:5d} {r['seconds']:7.3f} "
                f"{r.get('ingest_seconds', ''):>8}"
            )
    return out


if __name__ == "__main__":
    main()
