"""Tokens for BM25: jieba search-mode words for Chinese, lower-cased light-stemmed words for
English, stop words dropped. The same analyzer runs at index and at query time."""

from __future__ import annotations

import logging
import re
import threading

__all__ = ["analyze", "stem"]

_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)|([A-Za-z0-9]+(?:['’][A-Za-z]+)?)")
_EN_STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such
    than that the their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with you your yours yourself
    yourselves""".split()
)
_ZH_STOP = frozenset(
    "的 了 和 是 在 也 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 它们 "
    "这 那 之 其 于 以 为 对 上 中 下 等 被 把 让 从 向".split()
)

_jieba = None
_jieba_lock = threading.Lock()


def _cut(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba.lcut_for_search(text)


_SUFFIXES = (
    ("ational", "ate"),
    ("ization", "ize"),
    ("fulness", "ful"),
    ("iveness", "ive"),
    ("ements", ""),
    ("ement", ""),
    ("ments", ""),
    ("ment", ""),
    ("ities", ""),
    ("ity", ""),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("sses", "ss"),
    ("ness", ""),
    ("edly", ""),
    ("ed", ""),
    ("ly", ""),
    ("es", ""),
    ("s", ""),
)


def stem(word: str) -> str:
    """A light suffix stripper (enough to join plural/verb forms; not a full Porter stemmer)."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suf, rep in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) + len(rep) >= 3:
            if suf == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suf)] + rep
    return word


def analyze(text: str) -> list[str]:
    out: list[str] = []
    for m in _RUN.finditer(text):
        zh, en = m.group(1), m.group(2)
        if zh:
            out.extend(t for t in _cut(zh) if t.strip() and t not in _ZH_STOP)
        else:
            w = en.lower().replace("’", "'")
            if w not in _EN_STOP:
                out.append(stem(w.split("'")[0]))
    return out
