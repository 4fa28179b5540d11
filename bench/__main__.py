"""Run benchmarks: `python -m bench` lists them, `python -m bench NAME [NAME...]` runs those, `all` runs every one.

Each prints its numbers and the baseline it compares against, measured in the same run.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

SKIP = {"datasets", "__main__"}


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in SKIP)


def main(argv: list[str]) -> int:
    names = available()
    if not argv:
        print("benchmarks:", " ".join(names))
        print("run: python -m bench NAME [NAME...] | all   (each takes its own --help)")
        return 0
    chosen = names if argv == ["all"] else argv
    unknown = [n for n in chosen if n not in names]
    if unknown:
        print(f"error: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    failed = 0
    for name in chosen:
        print(f"== {name}", flush=True)
        entry = importlib.import_module(f"bench.{name}").main
        rc = entry([]) if inspect.signature(entry).parameters else entry()
        failed = failed or (rc if isinstance(rc, int) and not isinstance(rc, bool) else 0)  # a bench's own check
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
