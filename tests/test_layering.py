"""Dependencies point one way: orchestrator -> tools -> indexes -> polymodal. `edge/` (device code
and the orchestrator-side MQTT client) imports nothing of the rest, so it installs on a device alone.
Every import counts, also those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANK = {"polymodal": 0, "indexes": 1, "tools": 2, "orchestrator": 3}
OURS = {*RANK, "edge", "app"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top not in OURS or top == package:
                continue
            if (
                package == "edge"
                or top in ("app",)
                or RANK.get(top, -1) > RANK.get(package, -1)
                or (top == "edge" and package in ("polymodal", "indexes"))
            ):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return bad


def test_no_upward_import():
    assert [v for p in RANK for v in _violations(p)] == []


def test_edge_imports_nothing_of_the_rest():
    assert _violations("edge") == []


def test_the_check_itself_sees_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from orchestrator.agent import Agent\n")
    assert _imports(probe) == [(2, "orchestrator.agent")]
