"""No evaluation row appears in a prompt, an example bank, a cue or the code: what the router,
planner and tools know was written for them, so the evaluation figures measure generalisation,
not memory."""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestrator import cues
from orchestrator.prompts import plan_messages
from tools.testing import fake_tools

ROOT = Path(__file__).resolve().parents[1]


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def _eval_rows() -> set[str]:
    rows = set()
    for path in (ROOT / "eval").rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                text = row.get("text") or row.get("question") or ""
                if len(_norm(text)) >= 8:
                    rows.add(_norm(text))
    return rows


def test_the_eval_sets_are_there():
    assert len(_eval_rows()) > 500


def test_no_eval_row_is_an_example_a_worked_plan_or_in_a_prompt():
    rows = _eval_rows()
    tools = {t.name: t for t in fake_tools()}
    banks = [*cues.CHAT_EXAMPLES]
    for tool in tools.values():
        banks += [*tool.examples, *(ex.request for ex in tool.plan_examples), tool.describe()]
    prompt = _norm(plan_messages(tools, "")[0]["content"])
    assert [b for b in banks if _norm(b) in rows] == []
    assert [r for r in rows if r in prompt] == []


def test_no_eval_row_is_written_in_the_code():
    rows = [r for r in _eval_rows() if len(r) >= 14]
    found = []
    for package in ("orchestrator", "tools", "indexes", "polymodal", "edge"):
        for path in (ROOT / package).rglob("*.py"):
            text = _norm(path.read_text(encoding="utf-8"))
            found += [f"{path.relative_to(ROOT)}: {r}" for r in rows if r in text]
    assert found == []
