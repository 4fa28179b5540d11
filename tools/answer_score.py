"""The answer score: one logistic model over the signals rag_answer records for a concise answer,
deciding whether to keep it, instead of one limit per signal.

Each late signal alone separates right answers from answers to questions the knowledge base does
not answer only weakly; together they do better (eval/rag/README.md, session 7). The weights are
plain data, fitted by eval/rag/fit_answer_score.py on recorded CMRC dev answers (the cost) and
the calibration and first held-out unanswerable sets (the benefit), so a user can refit them on
their own records and pass them to `RagAnswerTool(answer_score=...)`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from polymodal.errors import ConfigError

__all__ = ["ANSWER_SCORE", "FEATURES", "MIN_ANSWER_SCORE", "answer_features", "answer_score", "check_weights"]

FEATURES = ("coverage", "grounding", "log10_not_found", "log10_source_not_found", "logit_answer_type", "log_length")

# fitted by eval/rag/fit_answer_score.py (L2 1.0, classes weighted equally) on 267 dev answers of
# seeds 1 and 2 and the 24 unanswerable questions of unanswerable.jsonl and unanswerable_heldout.jsonl
# that reached the late checks
ANSWER_SCORE: dict[str, float] = {
    "bias": -16.8316,
    "coverage": 8.4038,
    "grounding": 7.6779,
    "log10_not_found": -0.4452,
    "log10_source_not_found": -0.8797,
    "logit_answer_type": 1.5571,
    "log_length": 0.6651,
}
# the highest limit whose cross-validated cost on the dev answers stays within 1 F1 point (0.71)
MIN_ANSWER_SCORE = -2.25

_FLOOR = 1e-9


def answer_features(
    coverage: float,
    grounding: float | None,
    not_found: float | None,
    source_not_found: float | None,
    answer_type: float | None,
    answer: str,
) -> dict[str, float] | None:
    """The model's inputs, or None when a signal is missing (a backend without logits, a re-ask
    with no source sentence): the score then makes no decision."""
    if grounding is None or not_found is None or source_not_found is None or answer_type is None:
        return None
    p_type = min(max(answer_type, 1e-6), 1 - 1e-6)
    return {
        "coverage": coverage,
        "grounding": grounding,
        "log10_not_found": math.log10(max(not_found, _FLOOR)),
        "log10_source_not_found": math.log10(max(source_not_found, _FLOOR)),
        "logit_answer_type": math.log(p_type / (1 - p_type)),
        "log_length": math.log1p(len(answer.strip())),
    }


def check_weights(weights: Mapping[str, Any]) -> dict[str, float]:
    """`weights` as plain floats; ConfigError when one names no feature or is not a number."""
    unknown = [name for name in weights if name != "bias" and name not in FEATURES]
    if unknown:
        raise ConfigError(f"answer score: unknown feature(s) {', '.join(unknown)} (known: {', '.join(FEATURES)})")
    try:
        return {name: float(w) for name, w in weights.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"answer score: every weight must be a number ({exc})") from exc


def answer_score(features: Mapping[str, float], weights: Mapping[str, float] = ANSWER_SCORE) -> float:
    """bias + sum(weight * feature): above 0 the answer looks like the dev answers, below like
    answers to unanswerable questions (weights as returned by `check_weights`)."""
    return weights.get("bias", 0.0) + sum(w * features[name] for name, w in weights.items() if name != "bias")
