"""The CMRC 2018 metric used by eval/rag/cmrc_eval.py (our own implementation of its definition)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "eval" / "rag" / "cmrc_metric.py"
_spec = importlib.util.spec_from_file_location("cmrc_metric", _PATH)
metric = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(metric)


def test_mixed_segmentation_splits_chinese_chars_and_english_words():
    assert metric.mixed_segmentation("《月刊Comic Blade》", rm_punc=True) == ["月", "刊", "comic", "blade"]
    assert metric.mixed_segmentation("4分钟") == ["4", "分", "钟"]


def test_f1_is_on_the_longest_common_substring():
    assert metric.f1_score(["词作多写闺情及吟咏景物"], "闺情及吟咏景物") == pytest.approx(2 * 7 / 11 / (1 + 7 / 11))
    assert metric.f1_score(["《月刊Comic Blade》"], "Comic Blade月刊") == pytest.approx(0.5)
    assert metric.f1_score(["踢爆"], "") == 0.0
    assert metric.f1_score(["甲乙", "踢爆"], "踢爆。") == 1.0


def test_em_ignores_punctuation_and_case():
    assert metric.em_score(["4分钟"], "4分钟。") == 1.0
    assert metric.em_score(["MIT"], "mit") == 1.0
    assert metric.em_score(["踢爆"], "踢爆了") == 0.0
