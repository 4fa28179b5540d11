"""Citations that hold: parse `[n]` markers in a generated answer, drop the ones that name no
passage (or a passage that does not support the sentence), and mark uncited sentences.

Also a streaming filter, so a citation the model invented is never shown, not even for a moment
while tokens stream, and a lexical support measure shared by the checker and the evidence trimmer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

__all__ = [
    "CheckedAnswer",
    "check_citations",
    "CitationStreamFilter",
    "support",
    "char_ngrams",
    "split_answer_sentences",
    "strip_citations",
]

# [1]  [1, 2]  [1][2]  【1】  [1-2] are all read; anything else in brackets is left alone.
_MARK = re.compile(r"(\s*)[\[【]\s*(\d{1,3}(?:\s*[,，、\-–]\s*\d{1,3})*)\s*[\]】]")
_SENT = re.compile(r".+?(?:[。！？!?；;]+|\.(?=\s|$)|\n+|$)", re.S)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass
class CheckedAnswer:
    text: str  # the answer with only verified citation markers left
    cited: list[int] = field(default_factory=list)  # passage numbers still cited, in first-use order
    removed: list[int] = field(default_factory=list)  # markers dropped (no such passage / no support)
    unsupported_sentences: list[str] = field(default_factory=list)


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"[,，、]", group):
        if re.search(r"[\-–]", part):
            a, b = (int(x) for x in re.split(r"\s*[\-–]\s*", part.strip())[:2])
            out.extend(range(a, b + 1) if 0 < b - a < 10 else [a, b])
        elif part.strip():
            out.append(int(part))
    return out


_EMPTY_BRACKETS = re.compile(r"[（(]\s*[,，、;；\s]*\s*[）)]")


def strip_citations(text: str) -> str:
    """The text without citation marks, and without brackets that only held them ("（[1]，[2]）")."""
    return _EMPTY_BRACKETS.sub("", _MARK.sub("", text)).strip()


def char_ngrams(text: str) -> set[str]:
    """Support features: CJK characters and bigrams, plus stemmed words without stop words."""
    from indexes.analyzer import analyze

    feats: set[str] = set(analyze(" ".join(_WORD.findall(text))))
    for run in _CJK_RUN.findall(text):
        feats.update(run)
        feats.update(run[i : i + 2] for i in range(len(run) - 1))
    return feats


def support(claim: str, passage: str) -> float:
    """Share of the claim's features found in the passage (0..1); 1.0 for a claim with none."""
    c = char_ngrams(strip_citations(claim))
    if not c:
        return 1.0
    return len(c & char_ngrams(passage)) / len(c)


def split_answer_sentences(text: str) -> list[str]:
    return [m.group(0) for m in _SENT.finditer(text) if m.group(0).strip()]


def check_citations(
    answer: str, passages: dict[int, str], min_support: float = 0.2, require: bool = True, auto_support: float = 0.8
) -> CheckedAnswer:
    """Keep a marker only if it names a passage that lexically supports its sentence.

    A sentence left without any marker is listed in `unsupported_sentences` (when `require`).
    When the model wrote no marker at all, or every marker of a sentence named a passage that does
    not support it (small models often cite [2] for a span copied from [1]), a sentence copied from
    a passage (verbatim, or with at least `auto_support` of its features in it) gets that passage
    cited: a citation checked by construction, not one the model invented.
    """
    marked = bool(_MARK.search(answer))
    out: list[str] = []
    cited: list[int] = []
    removed: list[int] = []
    unsupported: list[str] = []
    for sent in split_answer_sentences(answer):
        plain = strip_citations(sent)
        kept: list[int] = []

        def repl(m: re.Match) -> str:
            good = []
            for n in _numbers(m.group(2)):
                if n in passages and support(plain, passages[n]) >= min_support and n not in kept:
                    good.append(n)
                    kept.append(n)
                elif n not in passages or support(plain, passages[n]) < min_support:
                    removed.append(n)
            return m.group(1) + "".join(f"[{n}]" for n in good) if good else ""

        new = _MARK.sub(repl, sent)
        if not kept and plain and (not marked or _MARK.search(sent)):
            # No marker, or every marker failed the check: the passage the sentence is copied from
            # (verbatim, or >= auto_support of its features) is cited instead. The model's wrong
            # numbers stay listed in `removed`.
            n = _best_support(plain, passages, auto_support)
            if n is not None:
                kept.append(n)
                new = _append_marker(new, n)
        if not kept and require and _is_claim(plain):
            unsupported.append(plain)
        cited.extend(n for n in kept if n not in cited)
        out.append(new)
    text = re.sub(r"[ \t]+\n", "\n", "".join(out)).strip()
    return CheckedAnswer(text=text, cited=cited, removed=removed, unsupported_sentences=unsupported)


def _best_support(claim: str, passages: dict[int, str], threshold: float) -> int | None:
    core = claim.strip().rstrip("。.!！?？;；，,").strip()
    if not core:
        return None
    for n, p in passages.items():  # passages come in rank order: the first verbatim source wins
        if core in p:
            return n
    scored = [(support(claim, p), -n) for n, p in passages.items()]
    best, neg = max(scored, default=(0.0, 0))
    return -neg if best >= threshold and len(char_ngrams(claim)) >= 4 else None


def _append_marker(sentence: str, n: int) -> str:
    m = re.search(r"([。！？!?；;.]*\s*)$", sentence)
    cut = m.start() if m else len(sentence)
    return (
        f"{sentence[:cut]} [{n}]{sentence[cut:]}"
        if not _CJK.search(sentence)
        else f"{sentence[:cut]}[{n}]{sentence[cut:]}"
    )


def _is_claim(sentence: str) -> bool:
    """Headings, list bullets and tiny fragments are not claims that need a citation."""
    s = sentence.strip().strip("*-#>•:：").strip()
    return len(s) >= 4 and not s.endswith((":", "："))


class CitationStreamFilter:
    """Pass streamed text through, holding back a possible citation marker until it is complete,
    then emit it only if every number names a passage in `valid`."""

    _HOLD = 12  # a marker longer than this is not a citation: release it as text

    def __init__(self, valid: Iterable[int]) -> None:
        self.valid = set(valid)
        self._buf = ""

    def feed(self, piece: str) -> Iterator[str]:
        self._buf += piece
        while self._buf:
            buf = self._buf
            i = min((j for j in (buf.find("["), buf.find("【")) if j >= 0), default=-1)
            if i < 0:  # no marker: emit all but trailing whitespace (a dropped marker takes it along)
                cut = len(buf.rstrip())
                if cut:
                    yield buf[:cut]
                self._buf = buf[cut:]
                return
            j = i
            while j > 0 and buf[j - 1].isspace():
                j -= 1
            if j > 0:
                yield buf[:j]
                self._buf = buf[j:]
                continue
            close = min((c for c in (buf.find("]", i), buf.find("】", i)) if c >= 0), default=-1)
            if close < 0:
                if len(buf) - i > self._HOLD:  # too long to be a marker: release the bracket
                    yield buf[: i + 1]
                    self._buf = buf[i + 1 :]
                    continue
                return  # wait for more text
            m = _MARK.fullmatch(buf[: close + 1])
            if not m:  # "[[1]", "[see]": release the first bracket, look again at the rest
                yield buf[: i + 1]
                self._buf = buf[i + 1 :]
                continue
            self._buf = buf[close + 1 :]
            nums = [n for n in _numbers(m.group(2)) if n in self.valid]
            if nums:
                yield m.group(1) + "".join(f"[{n}]" for n in nums)

    def flush(self) -> Iterator[str]:
        buf, self._buf = self._buf, ""
        if buf and not _MARK.fullmatch(buf):
            yield buf
