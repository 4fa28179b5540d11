"""The CMRC 2018 metric, written from its definition: EM and F1 on mixed segmentation.

Chinese characters and punctuation are single segments, runs of other characters are split into
words; F1 is computed from the longest common substring of the segment sequences (as in the
official evaluate script), EM compares the strings with punctuation removed. Both take the best
over the gold answers.
"""

from __future__ import annotations

import re

__all__ = ["mixed_segmentation", "remove_punctuation", "f1_score", "em_score"]

PUNCT = set("-:_*^/\\~`+=，。：？！“”；’《》……·、「」（）－～『』")
_CJK = re.compile(r"[\u4e00-\u9fa5]")
_WORDS = re.compile(r"\w+|[^\w\s]")


def mixed_segmentation(text: str, rm_punc: bool = False) -> list[str]:
    text = str(text).lower().strip()
    out: list[str] = []
    run = ""
    for ch in text:
        if rm_punc and ch in PUNCT:
            continue
        if _CJK.match(ch) or ch in PUNCT:
            if run:
                out.extend(_WORDS.findall(run))
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(_WORDS.findall(run))
    return out


def remove_punctuation(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in PUNCT)


def _lcs_len(a: list[str], b: list[str]) -> int:
    """Length of the longest common contiguous run of segments."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def f1_score(answers: list[str], prediction: str) -> float:
    scores = []
    pred = mixed_segmentation(prediction, rm_punc=True)
    for ans in answers:
        gold = mixed_segmentation(ans, rm_punc=True)
        n = _lcs_len(gold, pred)
        if n == 0:
            scores.append(0.0)
            continue
        p, r = n / len(pred), n / len(gold)
        scores.append(2 * p * r / (p + r))
    return max(scores) if scores else 0.0


def em_score(answers: list[str], prediction: str) -> float:
    pred = remove_punctuation(prediction)
    return 1.0 if any(remove_punctuation(a) == pred for a in answers) else 0.0
