"""`import orchestrator` stays light: no heavy ML library is imported (measured with -X importtime)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "torch", "transformers", "diffusers", "open_clip", "gradio", "sentence_transformers", "llama_cpp",
    "mcp", "fastapi", "uvicorn",
)  # fmt: skip


def _imported_modules(statement: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True, timeout=120, check=True
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_import_orchestrator_imports_no_heavy_library():
    names = _imported_modules("import orchestrator")
    assert "orchestrator.agent" in names  # the measurement itself works
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    assert heavy == []


def test_building_an_agent_over_fakes_imports_no_heavy_library():
    names = _imported_modules(
        "from orchestrator.testing import fake_agent; "
        "fake_agent().run('把知识库里关于边缘AI的要点总结一下，再找一张有猫的照片')"
    )
    assert sorted(n for n in names if n.split(".")[0] in HEAVY) == []
