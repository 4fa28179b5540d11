"""eval/rag/fit_answer_score.py: fitting tools.answer_score on cmrc_eval.py records."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "eval" / "rag" / "fit_answer_score.py"


@pytest.fixture(scope="module")
def fit():
    sys.path.insert(0, str(_PATH.parent))
    spec = importlib.util.spec_from_file_location("fit_answer_score", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(_PATH.parent))


def _records(n_answerable: int, n_unanswerable: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    records = []
    for i in range(n_answerable):  # grounded answers the re-ask keeps; a few weak ones
        g = rng.uniform(0.3, 1.0)
        records.append(
            {
                "id": f"a{i}",
                "kind": "a",
                "found": True,
                "prediction": "一九二一年",
                "gold": ["一九二一年"],
                "reason": "",
                "draft": "",
                "coverage": rng.uniform(0.4, 1),
                "grounding": g,
                "not_found_p": 10 ** rng.uniform(-8, -3),
                "source_not_found_p": 10 ** rng.uniform(-7, -1),
                "answer_type_p": rng.uniform(0.6, 0.99),
            }
        )
    for i in range(n_unanswerable):  # answers from text about something else
        records.append(
            {
                "id": f"u{i}",
                "kind": "u",
                "found": False,
                "prediction": "",
                "unanswerable_set": "held",
                "reason": "model: not in the answer's source sentence",
                "draft": "1887年[1]",
                "coverage": rng.uniform(0.28, 0.6),
                "grounding": rng.uniform(0.12, 0.35),
                "not_found_p": 10 ** rng.uniform(-5, -2),
                "source_not_found_p": 10 ** rng.uniform(-3, 0),
                "answer_type_p": rng.uniform(0.2, 0.9),
            }
        )
    # not reached: declined by grounding, or missing a signal
    records.append(
        {
            **records[0],
            "id": "g",
            "found": False,
            "reason": "answer not grounded (0.05 < 0.12)",
            "draft": "x[1]",
            "grounding": 0.05,
        }
    )
    records.append({**records[0], "id": "m", "answer_type_p": None})
    return {"answers": {"records": records}}


def test_fit_separates_the_classes_and_chooses_the_limit_by_the_dev_cost(fit, tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_records(80, 20)), encoding="utf-8")
    assert (
        fit.main(
            [
                "--answerable",
                str(path),
                "--unanswerable",
                str(path),
                "--sets",
                "held",
                "--dev-questions",
                "80",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["answerable"] == 80 and out["unanswerable"] == {"held": 20}  # the two not reached are left out
    weights = out["answer_score"]
    assert weights["grounding"] > 0 and weights["log10_source_not_found"] < 0
    # the chosen limit is the highest whose cross-validated cost stays within 1 F1 point
    rows = out["cross_validated"]
    assert out["min_answer_score"] == max(r["limit"] for r in rows if r["dev_f1_cost"] <= 1.0)
    chosen = next(r for r in rows if r["limit"] == out["min_answer_score"])
    assert chosen["held"] >= 10  # most unanswerable answers fall below it


def test_fit_needs_both_classes(fit, tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_records(30, 0)), encoding="utf-8")
    assert fit.main(["--answerable", str(path), "--unanswerable", str(path), "--sets", "held"]) == 1
    assert "need answerable and unanswerable" in capsys.readouterr().err
