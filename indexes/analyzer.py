"""Tokens for BM25: jieba search-mode words for Chinese, lower-cased Snowball-stemmed words for
English (PyStemmer), stop words dropped. The same analyzer runs at index and at query time, so a
knowledge base records the analyzer's name (`ANALYZER`) and is re-analysed when it changes.

`ANALYZERS` also keeps the first analyzer (a light suffix stripper: speed->spe, speeds->speed),
for comparison and for reading old knowledge bases that cannot be rewritten (read-only)."""

from __future__ import annotations

import logging
import re
import threading
from typing import Callable

from polymodal.errors import InputError

__all__ = ["analyze", "stem", "light_stem", "ANALYZER", "ANALYZERS", "LEGACY_ANALYZER", "get_analyzer"]

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


def light_stem(word: str) -> str:
    """The first analyzer's suffix stripper (kept for old knowledge bases and the comparison)."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suf, rep in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) + len(rep) >= 3:
            if suf == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suf)] + rep
    return word


_local = threading.local()


def stem(word: str) -> str:
    """English Snowball (Porter 2) stem: speed/speeds -> speed, embedded/embeds -> embed."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:  # PyStemmer objects are not thread-safe: one per thread
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer.stemWord(word)


def _analyze(text: str, stem_word: Callable[[str], str]) -> list[str]:
    out: list[str] = []
    for m in _RUN.finditer(text):
        zh, en = m.group(1), m.group(2)
        if zh:
            out.extend(t for t in _cut(zh) if t.strip() and t not in _ZH_STOP)
        else:
            w = en.lower().replace("’", "'")
            if w not in _EN_STOP:
                out.append(stem_word(w.split("'")[0]))
    return out


def analyze(text: str) -> list[str]:
    """BM25 tokens of `text` with the current analyzer (`ANALYZER`)."""
    return _analyze(text, stem)


def _analyze_light(text: str) -> list[str]:
    return _analyze(text, light_stem)


ANALYZER = "jieba+snowball-en/2"
ANALYZERS: dict[str, Callable[[str], list[str]]] = {"jieba+light-en/1": _analyze_light, ANALYZER: analyze}
LEGACY_ANALYZER = "jieba+light-en/1"  # what a knowledge base without a recorded analyzer was built with


def get_analyzer(name: str) -> Callable[[str], list[str]]:
    try:
        return ANALYZERS[name]
    except KeyError:
        raise InputError(f"unknown analyzer '{name}' (known: {', '.join(ANALYZERS)})") from None
