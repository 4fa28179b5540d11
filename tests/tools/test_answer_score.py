"""tools.answer_score: the features and the linear score (plain data, no model)."""

from __future__ import annotations

import math

import pytest

from tools.answer_score import ANSWER_SCORE, FEATURES, MIN_ANSWER_SCORE, answer_features, answer_score, check_weights


def test_features_are_the_logs_of_the_probabilities_and_need_every_signal():
    f = answer_features(0.5, 0.25, 1e-3, 0.1, 0.9, "  1887年 ")
    assert set(f) == set(FEATURES)
    assert f["log10_not_found"] == pytest.approx(-3) and f["log10_source_not_found"] == pytest.approx(-1)
    assert f["logit_answer_type"] == pytest.approx(math.log(9)) and f["log_length"] == pytest.approx(math.log(6))
    # probabilities of exactly 0 or 1 stay finite
    edge = answer_features(0.5, 0.25, 0.0, 0.0, 1.0, "x")
    assert all(math.isfinite(v) for v in edge.values())
    for missing in ((None, 0.1, 0.9), (1e-3, None, 0.9), (1e-3, 0.1, None)):
        assert answer_features(0.5, 0.25, *missing, "x") is None
    assert answer_features(0.5, None, 1e-3, 0.1, 0.9, "x") is None


def test_score_is_bias_plus_weighted_features_and_the_shipped_weights_rank_signals_sensibly():
    weights = check_weights({"bias": -1, "grounding": 4, "log_length": 0.5})
    f = answer_features(0.5, 0.25, 1e-3, 0.1, 0.9, "abc")
    assert answer_score(f, weights) == pytest.approx(-1 + 4 * 0.25 + 0.5 * math.log(4))
    assert set(ANSWER_SCORE) == {"bias", *FEATURES}
    # an answer from a sentence sharing a third of the question's features (typical of answers to
    # questions the KB does not answer): kept when both late checks are sure, declined when both doubt it
    good = answer_score(answer_features(0.5, 0.3, 1e-6, 1e-5, 0.95, "1887年"))
    bad = answer_score(answer_features(0.5, 0.3, 1e-6, 0.6, 0.2, "1887年"))
    assert good > MIN_ANSWER_SCORE > bad
    # a well-grounded answer outweighs one doubting signal
    assert answer_score(answer_features(0.9, 0.9, 1e-6, 0.6, 0.2, "1887年")) > MIN_ANSWER_SCORE
