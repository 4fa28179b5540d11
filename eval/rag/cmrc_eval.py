"""Evaluate rag_answer on CMRC 2018 (trial set) plus our unanswerable questions.

    .venv/bin/python eval/rag/cmrc_eval.py --data ../shared/data/cmrc2018 --sample 200 --seed 0

All paragraphs go into one knowledge base (built once, cached under the polymodal cache dir).
Reports retrieval hit@5 (gold paragraph, and a passage containing the gold answer), answer EM/F1
(the CMRC metric, eval/rag/cmrc_metric.py), the decline rate on eval/rag/unanswerable.jsonl (the
set the no-answer limits were calibrated on) and on the held-out sets unanswerable_heldout*.jsonl,
the no-answer gate's calibration table, citation precision, and mean timings. --ids FILE re-asks
a subset of a sample (paired comparisons); --extractive / --min-grounding / --late-checks /
--max-source-not-found / --min-answer-type / --min-answer-score override the tool's settings
(every signal is recorded per question, so eval/rag/fit_answer_score.py can refit the answer
score on a run's records).

The two no-answer limits of rag_answer (min_coverage, max_not_found) are chosen on a dev sample
disjoint from the test sample, with every question answered and both signals recorded:

    .venv/bin/python eval/rag/cmrc_eval.py --seed 1 --sample 120 --exclude 0:200 \
        --min-coverage 0 --max-not-found 1 --out dev.json    # prints decline_calibration rows
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmrc_metric import em_score, f1_score, remove_punctuation  # noqa: E402

HERE = Path(__file__).resolve().parent


def load_cmrc(folder: Path) -> tuple[list[dict], list[dict], str]:
    path = folder / "cmrc2018_trial.json"
    raw = path.read_bytes()
    data = json.loads(raw)["data"]
    paragraphs, questions = [], []
    for article in data:
        for p in article["paragraphs"]:
            paragraphs.append({"id": p["id"], "title": article["title"], "context": p["context"]})
            for q in p["qas"]:
                questions.append(
                    {
                        "id": q["id"],
                        "question": q["question"],
                        "paragraph": p["id"],
                        "answers": [a["text"] for a in q["answers"]],
                    }
                )
    return paragraphs, questions, hashlib.sha256(raw).hexdigest()[:12]


def open_kb(paragraphs: list[dict], digest: str, embedder: str, cache: Path):
    from indexes.text import Document, TextIndex
    from polymodal.config import Config

    cfg = Config()
    folder = cache / "eval" / f"cmrc2018-{digest}-{embedder}-{cfg.kb.chunk_tokens}"
    index = TextIndex.open(folder, embedder, chunk_tokens=cfg.kb.chunk_tokens, chunk_overlap=cfg.kb.chunk_overlap)
    if index.count() != len(paragraphs):
        t0 = time.perf_counter()
        index.upsert(
            [
                Document(
                    id=p["id"],
                    text=p["context"],
                    source=f"cmrc2018_trial.json#{p['id']}",
                    metadata={"title": p["title"]},
                )
                for p in paragraphs
            ]
        )
        print(
            f"built KB {folder}: {index.count()} paragraphs, {index.count_chunks()} chunks "
            f"in {time.perf_counter() - t0:.0f}s",
            file=sys.stderr,
        )
    return index


def contains(text: str, answers: list[str]) -> bool:
    t = remove_punctuation(text)
    return any(remove_punctuation(a) in t for a in answers)


def retrieval_report(index, sample: list[dict], unans: list[dict], k: int, mode: str) -> dict:
    from tools.rag_prompt import coverage

    hit_doc = hit_ans = 0
    cov_a, cov_u = [], []
    for q in sample:
        hits = index.search(q["question"], k=k, mode=mode)
        hit_doc += any(h.doc_id == q["paragraph"] for h in hits)
        hit_ans += any(contains(h.text, q["answers"]) for h in hits)
        cov_a.append(max((coverage(q["question"], h.text) for h in hits[:4]), default=0.0))
    for q in unans:
        hits = index.search(q["question"], k=k, mode=mode)
        cov_u.append(max((coverage(q["question"], h.text) for h in hits[:4]), default=0.0))
    table = []
    for t in [x / 100 for x in range(10, 75, 4)]:
        table.append(
            {
                "threshold": t,
                "answerable_kept": sum(c >= t for c in cov_a) / len(cov_a),
                "unanswerable_declined": sum(c < t for c in cov_u) / max(1, len(cov_u)),
            }
        )
    return {
        f"hit@{k}_paragraph": hit_doc / len(sample),
        f"hit@{k}_answer": hit_ans / len(sample),
        "gate_calibration": table,
    }


def answer_report(
    tool,
    sample: list[dict],
    unans: list[dict],
    k: int,
    concise: bool,
    log,
    seed: int = 0,
    checkpoint=None,
    done: list[dict] | None = None,
) -> dict:
    """Ask every question (answerable and unanswerable interleaved in a seeded order, so a partial
    run still measures both) and score; `checkpoint(report)` is called every 10 questions. `done`:
    records of an interrupted run of the same sample, reused instead of asked again.
    A question the tool rejects (CMRC's trial set has two empty ones) scores 0, with the error."""
    from polymodal.errors import PolymodalError
    from tools.citations import strip_citations
    from tools.rag import RagAnswer

    items = [("a", q) for q in sample] + [("u", q) for q in unans]
    random.Random(seed + 1).shuffle(items)
    previous = {(r["kind"], r["id"]): r for r in done or []}
    records: list[dict] = []
    started = time.perf_counter()
    for i, (kind, q) in enumerate(items):
        if (kind, q["id"]) in previous:
            records.append(previous[(kind, q["id"])])
            continue
        try:
            res = tool.run(q["question"], k=k, concise=concise)
        except PolymodalError as exc:
            res = RagAnswer(question=q["question"], answer="", found=False, reason=f"error: {exc}")
        pred = strip_citations(res.answer) if res.found else ""
        rec = {
            "id": q["id"],
            "kind": kind,
            "question": q["question"],
            "found": res.found,
            "prediction": pred,
            "reason": res.reason,
            "draft": res.draft,
            "citations": [c.number for c in res.citations],
            "coverage": res.coverage,
            "not_found_p": res.not_found_probability,
            "grounding": res.grounding,
            "source_not_found_p": res.source_not_found_probability,
            "answer_type_p": res.answer_type_probability,
            "answer_score": res.answer_score,
            "timings": {
                key: getattr(res.timings, key)
                for key in (
                    "retrieve",
                    "prompt",
                    "prefill",
                    "decode",
                    "recheck",
                    "type_check",
                    "prompt_tokens",
                    "cached_prompt_tokens",
                    "completion_tokens",
                )
            },
        }
        if kind == "a":
            rec.update(
                gold=q["answers"],
                em=em_score(q["answers"], pred),
                f1=f1_score(q["answers"], pred),
                cites_ok=sum(contains(c.text, q["answers"]) for c in res.citations),
                shown=any(contains(p.text, q["answers"]) for p in res.passages),
            )
        else:
            rec["unanswerable_kind"], rec["unanswerable_set"] = q["kind"], q.get("set", "")
        records.append(rec)
        if log:
            print(
                f"[{i + 1}/{len(items)}] {q['question']} -> {pred[:60]!r} "
                f"({'found' if res.found else res.reason}) gold={q.get('answers', ['-'])[0][:40]!r}",
                file=sys.stderr,
                flush=True,
            )
        if checkpoint and (i + 1) % 10 == 0:
            checkpoint(summarize(records, time.perf_counter() - started))
    return summarize(records, time.perf_counter() - started)


def summarize(records: list[dict], wall: float) -> dict:
    ans = [r for r in records if r["kind"] == "a"]
    una = [r for r in records if r["kind"] == "u"]
    cites = sum(len(r["citations"]) for r in ans)
    timed = [r["timings"] for r in records if r["timings"]["prefill"] > 0]
    shown = [r for r in ans if "shown" in r]  # records of older runs lack it
    return {
        "answerable_done": len(ans),
        "unanswerable_done": len(una),
        "EM": 100 * statistics.mean(r["em"] for r in ans) if ans else 0.0,
        "F1": 100 * statistics.mean(r["f1"] for r in ans) if ans else 0.0,
        "F1_when_answered": 100 * statistics.mean([r["f1"] for r in ans if r["found"]] or [0.0]),
        "answerable_declined": sum(not r["found"] for r in ans) / max(1, len(ans)),
        "unanswerable_declined": sum(not r["found"] for r in una) / max(1, len(una)),
        "unanswerable_declined_by_kind": _declined_by(una, "unanswerable_kind"),
        "unanswerable_declined_by_set": _declined_by(una, "unanswerable_set"),
        "citation_precision": sum(r["cites_ok"] for r in ans) / cites if cites else 0.0,
        # the gold answer is in the evidence the model was shown (after trimming), and F1 on those questions
        "answer_in_evidence": statistics.mean(r["shown"] for r in shown) if shown else 0.0,
        "F1_answer_in_evidence": 100 * statistics.mean([r["f1"] for r in shown if r["shown"]] or [0.0]),
        "citations": cites,
        "mean_timings_s": {key: statistics.mean(t[key] for t in timed) for key in (timed[0] if timed else {})},
        "wall_s": wall,
        "decline_calibration": decline_calibration(records),
        "records": records,
    }


def _declined_by(una: list[dict], key: str) -> dict[str, float]:
    """Share of unanswerable questions declined, per value of `key` (records of older runs lack some keys)."""
    groups: dict[str, list[dict]] = {}
    for r in una:
        groups.setdefault(r.get(key, ""), []).append(r)
    return {name: sum(not r["found"] for r in rs) / len(rs) for name, rs in sorted(groups.items())}


def decline_calibration(records: list[dict]) -> list[dict]:
    """What the two no-answer signals would give at other thresholds, from the questions the model
    answered in this run (run with --min-coverage 0 --max-not-found 1 to see every question):
    answerable F1 (a declined question scores 0) and the share of unanswerable ones declined,
    for a coverage gate c and a P(NOT_FOUND) limit p."""
    seen = [r for r in records if r.get("not_found_p") is not None and not _held_out(r)]
    ans = [r for r in seen if r["kind"] == "a"]
    una = [r for r in seen if r["kind"] == "u"]
    if not ans or not una:
        return []

    def kept(r: dict, c: float, p: float) -> bool:
        return r["found"] and r["coverage"] >= c and r["not_found_p"] < p

    table = []
    for c in (0.0, 0.18, 0.22, 0.26, 0.28, 0.30, 0.34):
        for p in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.01):
            table.append(
                {
                    "min_coverage": c,
                    "max_not_found": p,
                    "F1": round(100 * statistics.mean(r["f1"] if kept(r, c, p) else 0.0 for r in ans), 1),
                    "unanswerable_declined": round(sum(not kept(r, c, p) for r in una) / len(una), 3),
                }
            )
    return table


def _held_out(record: dict) -> bool:
    """Questions of a held-out unanswerable set never choose the limits."""
    return "heldout" in record.get("unanswerable_set", "")


def load_unanswerable(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append({**json.loads(line), "set": Path(path).stem})
    return out


def limit_or_none(text: str) -> float | str:
    return "none" if text.lower() == "none" else float(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/cmrc2018")
    ap.add_argument("--sample", type=int, default=200, help="random sample of questions (0: all 1,002)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--exclude",
        default="",
        metavar="SEED:N",
        help="leave out the questions of the seed-SEED sample of N (a dev sample for calibrating)",
    )
    ap.add_argument(
        "--unanswerable",
        nargs="+",
        default=[
            str(HERE / "unanswerable.jsonl"),
            str(HERE / "unanswerable_heldout.jsonl"),
            str(HERE / "unanswerable_heldout2.jsonl"),
            str(HERE / "unanswerable_heldout3.jsonl"),
        ],
        help="JSONL files of questions the KB cannot answer; a file named *heldout* is reported "
        "but never used in the decline calibration",
    )
    ap.add_argument("--unanswerable-sample", type=int, default=0, help="use only N of them (0: all)")
    ap.add_argument("--embedder", default="use-multilingual-v3")
    ap.add_argument("--k", type=int, default=4, help="passages given to the model")
    ap.add_argument("--mode", default="hybrid", choices=("hybrid", "dense", "bm25"))
    ap.add_argument("--concise", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--retrieval-only", action="store_true", help="no LLM: hit@5 and the gate calibration")
    ap.add_argument("--min-coverage", type=float, default=None, help="override the no-answer gate")
    ap.add_argument(
        "--max-not-found",
        type=float,
        default=None,
        help="override the P(NOT_FOUND) limit (1: record it for every question, never decline by it)",
    )
    ap.add_argument("--min-grounding", type=float, default=None, help="override the grounding limit (0: off)")
    ap.add_argument("--evidence-tokens", type=int, default=None)
    ap.add_argument(
        "--extractive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override rag_answer's extractive (copy-only) decoding of concise answers",
    )
    ap.add_argument(
        "--late-checks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the re-ask over the answer's source sentence and the answer-type question (default: on)",
    )
    ap.add_argument(
        "--max-source-not-found",
        type=limit_or_none,
        default=None,
        metavar="P|none",
        help="a limit of the re-ask's own on P(NOT_FOUND) (default: none)",
    )
    ap.add_argument(
        "--min-answer-type",
        type=limit_or_none,
        default=None,
        metavar="P|none",
        help="a limit of the answer-type question's own on P(yes) (default: none)",
    )
    ap.add_argument(
        "--min-answer-score",
        type=limit_or_none,
        default=None,
        metavar="S|none",
        help="override the limit on tools.answer_score (none: the score decides nothing)",
    )
    ap.add_argument(
        "--ids",
        default="",
        metavar="FILE",
        help="keep only the sampled questions whose ids are listed in FILE (one per line)",
    )
    ap.add_argument("--config", default=None, help="polymodal config TOML (default: the usual lookup)")
    ap.add_argument("--out", default="", help="write the full report (with per-question records) as JSON")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--resume", action="store_true", help="reuse the records an interrupted run left in --out")
    args = ap.parse_args(argv)

    from polymodal.config import load_config

    cfg = load_config(args.config)
    paragraphs, questions, digest = load_cmrc(Path(args.data))
    if args.exclude:  # a dev sample disjoint from the test sample of another seed
        seed, _, n = args.exclude.partition(":")
        taken = {q["id"] for q in random.Random(int(seed)).sample(questions, int(n))}
        questions = [q for q in questions if q["id"] not in taken]
    rng = random.Random(args.seed)
    sample = rng.sample(questions, args.sample) if 0 < args.sample < len(questions) else questions
    unans = load_unanswerable(args.unanswerable)
    if args.ids:  # re-ask a subset of the same sample (paired comparisons)
        keep = set(Path(args.ids).read_text().split())
        sample, unans = [q for q in sample if q["id"] in keep], [q for q in unans if q["id"] in keep]
    if 0 < args.unanswerable_sample < len(unans):
        unans = rng.sample(unans, args.unanswerable_sample)
    print(
        f"seed={args.seed} sample={len(sample)} of {len(questions)} questions, {len(unans)} unanswerable, "
        f"{len(paragraphs)} paragraphs",
        flush=True,
    )
    index = open_kb(paragraphs, digest, args.embedder, cfg.paths.cache())
    report: dict = {
        "seed": args.seed,
        "sample": len(sample),
        "unanswerable": len(unans),
        "kb_chunks": index.count_chunks(),
        "embedder": index.embedder.name,
        "mode": args.mode,
        "k": args.k,
        "concise": args.concise,
    }
    report["retrieval"] = retrieval_report(index, sample, unans, 5, args.mode)
    print(json.dumps(report["retrieval"], indent=1), flush=True)
    if not args.retrieval_only:
        from tools.rag import RagAnswerTool

        kw = {}
        if args.min_coverage is not None:
            kw["min_coverage"] = args.min_coverage
        if args.max_not_found is not None:
            kw["max_not_found"] = args.max_not_found + (1e-9 if args.max_not_found >= 1 else 0.0)
        if args.min_grounding is not None:
            kw["min_grounding"] = args.min_grounding
        if args.evidence_tokens is not None:
            kw["evidence_tokens"] = args.evidence_tokens
        if args.extractive is not None:
            kw["extractive"] = args.extractive
        if args.late_checks is not None:
            kw["late_checks"] = args.late_checks
        for name in ("max_source_not_found", "min_answer_type", "min_answer_score"):
            if getattr(args, name) is not None:
                kw[name] = None if getattr(args, name) == "none" else getattr(args, name)
        tool = RagAnswerTool(index.folder, config=cfg, index=index, mode=args.mode, **kw)
        tool.ensure_setup()
        report["model"] = tool.llm.name
        report["gate_min_coverage"] = tool.limits["concise"]["min_coverage"]
        report["gate_max_not_found"] = tool.limits["concise"]["max_not_found"]
        report["gate_min_grounding"] = tool.min_grounding
        report["evidence_tokens"] = tool.evidence_tokens
        report["extractive"] = tool.extractive
        report["max_source_not_found"] = tool.max_source_not_found
        report["min_answer_type"] = tool.min_answer_type
        report["late_checks"] = tool.late_checks
        report["min_answer_score"] = tool.min_answer_score

        def checkpoint(partial: dict) -> None:
            if args.out:
                Path(args.out).write_text(
                    json.dumps({**report, "answers": partial, "partial": True}, ensure_ascii=False, indent=1),
                    encoding="utf-8",
                )

        done = None
        if args.resume and args.out and Path(args.out).exists():
            old = json.loads(Path(args.out).read_text(encoding="utf-8"))
            if old.get("seed") == args.seed and old.get("sample") == len(sample):
                done = old.get("answers", {}).get("records", [])
                print(f"resuming: {len(done)} questions already answered", file=sys.stderr)
        report["answers"] = answer_report(
            tool, sample, unans, args.k, args.concise, not args.quiet, args.seed, checkpoint, done
        )
        shown = {k: v for k, v in report["answers"].items() if k not in ("records", "decline_calibration")}
        for row in report["answers"]["decline_calibration"]:
            print(json.dumps(row))
        print(json.dumps(shown, indent=1, ensure_ascii=False))
    if args.out:
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
