"""Photo search quality: R@1 and R@5 of the embedding alone (ConSE, or open_clip when configured)
and of the hybrid search, per query kind, in one run over one index.

    python eval/photos/evaluate.py --folder DIR --queries dev.jsonl [--mode conse|hybrid] [--ocr]

Query rows: {"query", "lang", "kind", "relevant": [paths relative to DIR], "filters": {...}}; filters
(folder relative to DIR, date_from, date_to, has_faces) go to the search API in both modes.
R@k = |relevant in the top k| / min(|relevant|, k): 1.0 when the top k is as good as it can be.
The index is cached beside the folder (`DIR.polymodal-index[-ocr]`) and updated incrementally.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

MODES = {"conse": "dense", "hybrid": "hybrid"}


def recall(hits: list[str], relevant: set[str], k: int) -> float:
    return len(set(hits[:k]) & relevant) / max(1, min(len(relevant), k))


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(
    folder: Path,
    rows: list[dict],
    modes: list[str],
    ocr: bool,
    index_dir: Path | None = None,
    fusion: dict | None = None,
) -> dict:
    from indexes.images import ImageIndex

    folder = folder.resolve()
    index_dir = index_dir or folder.with_name(folder.name + (".polymodal-index-ocr" if ocr else ".polymodal-index"))
    t0 = time.perf_counter()
    with ImageIndex.open(index_dir, "conse", ocr=ocr) as idx:
        report = idx.index_folder(folder, show_progress=sys.stderr.isatty())
    indexing = {"summary": report.summary(), "seconds": round(time.perf_counter() - t0, 1)}
    results: dict = {"index": str(index_dir), "indexing": indexing, "ocr": ocr, "modes": {}}
    with ImageIndex.open(index_dir, read_only=True) as idx:
        results["signals"] = idx.signal_info()
        for mode in modes:
            per_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
            misses = []
            for row in rows:
                filters = dict(row.get("filters") or {})
                folder_filter = filters.pop("folder", "")
                hits = idx.search(
                    row["query"],
                    k=5,
                    mode=MODES[mode],
                    folder=str(folder / folder_filter) if folder_filter else "",
                    filters=filters,
                    **(fusion or {}),
                )
                got = [str(Path(h.path).relative_to(folder)) for h in hits]
                rel = set(row["relevant"])
                r1, r5 = recall(got, rel, 1), recall(got, rel, 5)
                per_kind[row.get("kind", "?")].append((r1, r5))
                per_kind["all"].append((r1, r5))
                if r1 < 1:
                    misses.append({"id": row.get("id"), "query": row["query"], "top": got[:3]})
            results["modes"][mode] = {
                kind: {
                    "n": len(v),
                    "R@1": round(sum(a for a, _ in v) / len(v), 3),
                    "R@5": round(sum(b for _, b in v) / len(v), 3),
                }
                for kind, v in sorted(per_kind.items())
            }
            results["modes"][mode]["misses@1"] = misses
    return results


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", required=True, type=Path)
    ap.add_argument("--queries", required=True, type=Path)
    ap.add_argument("--mode", choices=[*MODES, "both"], default="both")
    ap.add_argument("--ocr", action="store_true", help="index with OCR (Tesseract) on")
    ap.add_argument("--index", type=Path, default=None, help="index folder (default: beside --folder)")
    ap.add_argument("--fusion", choices=["rrf", "weighted"], default=None, help="default: the index's")
    ap.add_argument("--alpha", type=float, default=None, help="weighted fusion: the embedding's share")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    modes = list(MODES) if args.mode == "both" else [args.mode]
    fusion = {k: v for k, v in (("fusion", args.fusion), ("alpha", args.alpha)) if v is not None}
    res = evaluate(args.folder, load_rows(args.queries), modes, args.ocr, args.index, fusion)
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=1))
        return res
    print(f"index {res['index']}: {res['indexing']['summary']}; ocr {'on' if res['ocr'] else 'off'}")
    kinds = sorted({k for m in res["modes"].values() for k in m if k != "misses@1"}, key=lambda k: (k == "all", k))
    print(f"{'kind':10} {'n':>3}  " + "  ".join(f"{m + ' R@1':>12} {m + ' R@5':>12}" for m in modes))
    for kind in kinds:
        cells = [res["modes"][m].get(kind, {}) for m in modes]
        n = cells[0].get("n", 0)
        print(f"{kind:10} {n:>3}  " + "  ".join(f"{c.get('R@1', 0):>12.3f} {c.get('R@5', 0):>12.3f}" for c in cells))
    return res


if __name__ == "__main__":
    main()
