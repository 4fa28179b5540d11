"""Fit tools.answer_score's weights and choose its limit from cmrc_eval.py records.

    .venv/bin/python eval/rag/fit_answer_score.py --answerable dev1.json dev2.json \
        --unanswerable test.json --sets unanswerable unanswerable_heldout

The cost side: answerable questions of dev runs (never the test sample) whose answer reached the
late checks; declining one costs its F1. The benefit side: questions of the named unanswerable sets
whose answer reached them. Every record needs all the signals (cmrc_eval.py records them).

A weighted L2 logistic regression (the two classes weighted equally) over tools.answer_score's
FEATURES. The limit is the highest score threshold whose cross-validated cost (10 folds, mean
of 5 shuffles) stays within --max-cost F1 points over --dev-questions questions. Prints the
weights as JSON, ready for `RagAnswerTool(answer_score=..., min_answer_score=...)`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmrc_metric import f1_score  # noqa: E402

from tools.answer_score import FEATURES, answer_features  # noqa: E402
from tools.citations import strip_citations  # noqa: E402


def answer_text(record: dict) -> str:
    """The answer as the tool scored it: the prediction, or a declined answer's draft (no citations)."""
    return record["prediction"] if record["found"] else strip_citations(record.get("draft") or "")


def reached(record: dict) -> dict | None:
    """The record's features if its answer reached the late checks (accepted, or declined by them)."""
    text = answer_text(record)
    if not text or record.get("grounding") is None or (record.get("reason") or "").startswith("answer not grounded"):
        return None
    return answer_features(
        record["coverage"],
        record["grounding"],
        record.get("not_found_p"),
        record.get("source_not_found_p"),
        record.get("answer_type_p"),
        text,
    )


def load(
    answerable: list[str], unanswerable: list[str], sets: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X (features), y (1: answerable), F1 if kept, and the unanswerable set name (or "dev")."""
    rows = []
    for path in answerable:
        for r in json.loads(Path(path).read_text(encoding="utf-8"))["answers"]["records"]:
            f = reached(r) if r["kind"] == "a" else None
            if f is not None:
                rows.append((f, 1, f1_score(r["gold"], answer_text(r)), "dev"))
    for path in unanswerable:
        for r in json.loads(Path(path).read_text(encoding="utf-8"))["answers"]["records"]:
            f = reached(r) if r["kind"] == "u" and r.get("unanswerable_set") in sets else None
            if f is not None:
                rows.append((f, 0, 0.0, r["unanswerable_set"]))
    X = np.array([[f[name] for name in FEATURES] for f, *_ in rows])
    return X, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), np.array([r[3] for r in rows])


def fit(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Raw-feature weights and bias of a Newton-fitted weighted L2 logistic regression
    (standardized features, classes weighted equally, bias not penalized)."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    w = np.where(y == 1, 1.0, (y == 1).sum() / max(1, (y == 0).sum()))
    Z = np.c_[(X - mu) / sd, np.ones(len(X))]
    b = np.zeros(Z.shape[1])
    reg = lam * np.r_[np.ones(Z.shape[1] - 1), 0.0]
    for _ in range(100):
        p = 1 / (1 + np.exp(-Z @ b))
        g = Z.T @ ((p - y) * w) + reg * b
        H = (Z * (p * (1 - p) * w)[:, None]).T @ Z + np.diag(reg + 1e-9)
        step = np.linalg.solve(H, g)
        b -= step
        if np.abs(step).max() < 1e-10:
            break
    return b[:-1] / sd, float(b[-1] - np.sum(b[:-1] * mu / sd))


def out_of_fold(X: np.ndarray, y: np.ndarray, lam: float, folds: int = 10, shuffles: int = 5) -> np.ndarray:
    scores = np.zeros((shuffles, len(X)))
    for s in range(shuffles):
        idx = list(range(len(X)))
        random.Random(s).shuffle(idx)
        for k in range(folds):
            test = idx[k::folds]
            train = sorted(set(idx) - set(test))
            w, bias = fit(X[train], y[train], lam)
            scores[s, test] = X[test] @ w + bias
    return scores.mean(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--answerable", nargs="+", required=True, help="cmrc_eval.py --out files of dev runs")
    ap.add_argument("--unanswerable", nargs="+", required=True, help="cmrc_eval.py --out files holding the sets below")
    ap.add_argument("--sets", nargs="+", default=["unanswerable", "unanswerable_heldout"])
    ap.add_argument("--dev-questions", type=int, default=287, help="answerable questions the dev runs asked in all")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--max-cost", type=float, default=1.0, help="F1 points the limit may cost on dev")
    ap.add_argument("--json", action="store_true", help="print only the result as JSON")
    args = ap.parse_args(argv)

    X, y, f1, group = load(args.answerable, args.unanswerable, args.sets)
    if (y == 1).sum() == 0 or (y == 0).sum() == 0:
        print("error: need answerable and unanswerable records that reached the late checks", file=sys.stderr)
        return 1
    oof = out_of_fold(X, y, args.l2)
    table, limit = [], None
    for thr in np.arange(-4.0, -0.99, 0.25):
        declined = oof < thr
        cost = float(f1[declined & (y == 1)].sum() / args.dev_questions * 100)
        row = {
            "limit": round(float(thr), 2),
            "dev_f1_cost": round(cost, 2),
            **{s: int((declined & (group == s)).sum()) for s in args.sets},
        }
        table.append(row)
        if cost <= args.max_cost:
            limit = row["limit"]
    w, bias = fit(X, y, args.l2)
    weights = {"bias": round(bias, 4), **{name: round(float(v), 4) for name, v in zip(FEATURES, w)}}
    result = {
        "answer_score": weights,
        "min_answer_score": limit,
        "answerable": int((y == 1).sum()),
        "unanswerable": {s: int((group == s).sum()) for s in args.sets},
        "cross_validated": table,
    }
    if not args.json:
        print(f"{result['answerable']} dev answers, unanswerable {result['unanswerable']} (reached the late checks)")
        for row in table:
            print("  " + "  ".join(f"{k} {v}" for k, v in row.items()))
        print(f"limit (highest with dev cost <= {args.max_cost}): {limit}")
    print(json.dumps(result if args.json else {"answer_score": weights, "min_answer_score": limit}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
