"""Query understanding for photo search: dates become a filter, people a face signal, quoted or
"says ..." text the words OCR must match; what remains is the description for the embedding.

Dates: spans are found by a small grammar of date words (years, months, seasons, relative words in
English and Chinese) and resolved by `dateparser` (which also gives their granularity: year, month,
week, day). Seasons are meteorological months (northern hemisphere); a month or season without a
year matches it in any year. People: a query word counts as a person word when its embedding (the
index's own text encoder) is closer to a 'person' prototype than to every other broad category
(animal, object, place, food, ...), so no list of person nouns is kept.
"""

from __future__ import annotations

import calendar
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from indexes.photo_signals import FACE_TOKEN, SEASONS

__all__ = ["PhotoQuery", "understand", "parse_dates", "PersonDetector"]

_MONTHS = "|".join(m.lower() for m in calendar.month_name[1:] + calendar.month_abbr[1:] if m)
_SEASON_EN = "spring|summer|autumn|fall|winter"
_REL_EN = r"(?:last|this|past|previous)\s+(?:year|month|week)|yesterday|today"
_REL_ZH = "去年|今年|前年|上个月|这个月|本月|上周|上星期|这周|本周|昨天|今天"
_NUM_ZH = "一二两三四五六七八九十"
_DATE_SPAN = re.compile(
    rf"(?:\b(?:in|from|during|of|taken in|taken)\s+)?(?:the\s+)?"
    rf"(?:(?:\b(?:last|this|past|previous)\s+)?\b(?:{_SEASON_EN})\b(?:\s+(?:of\s+)?(?:19|20)\d{{2}}\b)?"
    rf"|\b(?:{_MONTHS})\b\.?(?:\s+(?:19|20)\d{{2}}\b)?"
    rf"|\b{_REL_EN}\b"
    rf"|(?<!\d)(?:19|20)\d{{2}}\s*年?(?:\s*(?:\d{{1,2}}|[{_NUM_ZH}]{{1,2}})\s*月)?(?:的)?(?!\d)"
    rf"|(?:{_REL_ZH})(?:的)?"
    rf"|(?<![\d{_NUM_ZH}])(?:\d{{1,2}}|[{_NUM_ZH}]{{1,2}})\s*月(?:份)?(?:的)?"
    rf"|[春夏秋冬](?:天|季)(?:的)?)",
    re.I,
)
_SAYS = re.compile(
    r"[\"“「『](?P<q>[^\"”」』]{2,})[\"”」』]"
    r"|\b(?:that|which)?\s*(?:says|saying|reads|reading|written|with the (?:words?|text))\s*:?\s*(?P<en>.+)$"
    r"|(?:写着|写有|上面写|印着|文字是)\s*[:：]?\s*(?P<zh>.+)$",
    re.I,
)
_NUMBER_EN = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_NUMBER_ZH = {c: i + 1 for i, c in enumerate("一二三四五六七八九十")} | {"两": 2, "俩": 2}
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[A-Za-z]+|\d+")


@dataclass
class PhotoQuery:
    """What a photo query asks for, and the filters it implies (all optional)."""

    raw: str
    text: str  # for the embedding: the query without its date phrases
    says: str = ""  # text the photo should contain (OCR)
    date_from: str = ""  # ISO date, inclusive
    date_to: str = ""  # ISO date, inclusive
    months: tuple[int, ...] = ()  # any year
    dates: list[str] = field(default_factory=list)  # the phrases understood as dates
    people: list[str] = field(default_factory=list)  # the words understood as people
    people_count: int = 0  # 0: not said
    medium: list[str] = field(default_factory=list)  # words for the photo itself ('photos', '照片')

    def bm25_terms(self) -> list[str]:
        """What BM25 looks for: the analysed description and quoted text, less the medium words,
        plus the reserved face tokens when people are asked for."""
        from indexes.analyzer import analyze

        drop = set(analyze(" ".join(self.medium)))
        return [t for t in analyze(f"{self.text} {self.says}") if t not in drop] + self.reserved

    @property
    def reserved(self) -> list[str]:
        """Reserved BM25 tokens (see photo_signals.signal_document)."""
        if not self.people:
            return []
        return [FACE_TOKEN, f"faces{min(self.people_count, 9)}"] if self.people_count else [FACE_TOKEN]

    def understood(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.dates:
            out["dates"] = self.dates
            out["date_from"], out["date_to"], out["months"] = self.date_from, self.date_to, list(self.months)
        if self.people:
            out["people"] = self.people
            if self.people_count:
                out["people_count"] = self.people_count
        if self.says:
            out["says"] = self.says
        return out


_parser = None
_parser_lock = threading.Lock()


def _date_parser() -> Any:
    global _parser
    with _parser_lock:
        if _parser is None:
            from dateparser.date import DateDataParser

            _parser = DateDataParser(
                languages=["en", "zh"], settings={"PREFER_DATES_FROM": "past", "RETURN_TIME_AS_PERIOD": True}
            )
        return _parser


def _zh_number(s: str) -> int:
    if s.isdigit():
        return int(s)
    if s.startswith("十"):
        return 10 + _NUMBER_ZH.get(s[1:], 0)
    if len(s) == 2 and s[1] == "十":
        return _NUMBER_ZH.get(s[0], 0) * 10
    return _NUMBER_ZH.get(s, 0)


def _span_range(span: str, today: date) -> tuple[date | None, date | None, tuple[int, ...]]:
    """(start, end, months) of one date phrase; start/end None: any year."""
    s = span.lower().strip()
    s = re.sub(r"^(in|from|during|of|taken in|taken)\s+|^the\s+|的$", "", s).strip()
    season = next((SEASONS[k] for k in SEASONS if re.search(rf"\b{k}\b" if k.isascii() else k, s)), ())
    if season:
        rest = re.sub(rf"\b({_SEASON_EN})\b|[春夏秋冬](天|季)|\bof\b", " ", s).strip()
        if not rest:
            return None, None, season
        if re.fullmatch(r"(last|previous|past)", rest):  # the last season that has ended
            end_month = season[-1]
            year = today.year if today.month > end_month else today.year - 1
            if season[0] > season[-1]:  # winter spans the new year
                year = today.year if today.month > 2 else today.year - 1
                return date(year - 1, 12, 1), date(year, 2, 28 + calendar.isleap(year)), season
            return date(year, season[0], 1), date(year, end_month, calendar.monthrange(year, end_month)[1]), season
        if rest == "this":
            rest = "this year"
        start, end, _ = _span_range(rest, today)
        return start, end, season
    if m := re.fullmatch(rf"(\d{{1,2}}|[{_NUM_ZH}]{{1,2}})\s*月(份)?", s):
        n = _zh_number(m[1])
        return (None, None, (n,)) if 1 <= n <= 12 else (None, None, ())
    s = re.sub(r"((?:19|20)\d{2})\s*年", r"\1 ", s).strip()
    s = re.sub(rf"([{_NUM_ZH}]{{1,2}})\s*月", lambda m: f"{_zh_number(m[1])}月", s)
    if re.fullmatch(rf"({_MONTHS})\.?", s):  # a month without a year: that month in any year
        d = _date_parser().get_date_data(s)
        return (None, None, (d.date_obj.month,)) if d and d.date_obj else (None, None, ())
    d = _date_parser().get_date_data(s)
    if not d or not d.date_obj:
        return None, None, ()
    day, period = d.date_obj.date(), d.period or "day"
    if period == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31), ()
    if period == "month":
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1]), ()
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6), ()
    return day, day, ()


def parse_dates(query: str, today: date | None = None) -> tuple[str, list[str], str, str, tuple[int, ...]]:
    """(query without date phrases, the phrases, date_from, date_to, months) for one query."""
    today = today or datetime.now().date()
    phrases, starts, ends, months = [], [], [], set()
    for m in _DATE_SPAN.finditer(query):
        start, end, mon = _span_range(m.group(0), today)
        if start is None and not mon:
            continue
        phrases.append(m.group(0).strip())
        if start is not None:
            starts.append(start)
            ends.append(end)
        months.update(mon)
    rest = query
    for p in phrases:
        rest = rest.replace(p, " ")
    rest = " ".join(rest.split())
    return (
        rest,
        phrases,
        min(starts).isoformat() if starts else "",
        max(ends).isoformat() if ends else "",
        tuple(sorted(months)),
    )


class PersonDetector:
    """Is a word about people, or about the medium ('photos', '照片')? Nearest of broad category
    prototypes in the encoder's text space. Medium words say nothing BM25 can match on a photo
    (they only match text that happens to mention photos), so they are left out of its terms."""

    PERSON = ("a person", "people", "a child", "someone's face", "family and friends")
    OTHERS = (
        "an animal",
        "an object",
        "a place",
        "food",
        "a vehicle",
        "a plant",
        "a building",
        "clothing",
        "writing",
        "weather",
        "an activity",
        "an event",
        "a photograph",
    )

    MARGIN = 0.05  # closer to 'person' than to any other category by this much (cosine)
    MEDIUM_MARGIN = 0.25  # 'photo', 'image', '图片' clear it by 0.26-0.44; 'screenshot', 'camera' by 0.12-0.19

    def __init__(self, embed_texts: Any) -> None:
        self.embed_texts = embed_texts
        self._protos: tuple[np.ndarray, np.ndarray] | None = None
        self._cache: dict[str, tuple[bool, bool]] = {}
        self._lock = threading.Lock()

    def _prototypes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._protos is None:
            p = np.asarray(self.embed_texts(list(self.PERSON)), np.float32).mean(axis=0)
            self._protos = (p / max(float(np.linalg.norm(p)), 1e-12), np.asarray(self.embed_texts(list(self.OTHERS))))
        return self._protos

    def _classify(self, words: list[str]) -> dict[str, tuple[bool, bool]]:
        with self._lock:
            todo = [w for w in dict.fromkeys(words) if w not in self._cache]
            if todo:
                person, others = self._prototypes()
                medium = self.OTHERS.index("a photograph")
                vecs = np.asarray(self.embed_texts(todo), np.float32)
                for w, v in zip(todo, vecs):
                    sims = others @ v
                    rest = max(float(np.delete(sims, medium).max()), float(v @ person))
                    self._cache[w] = (
                        bool(v @ person > sims.max() + self.MARGIN),
                        sims[medium] > rest + self.MEDIUM_MARGIN,
                    )
            return {w: self._cache[w] for w in words}

    def people(self, words: list[str]) -> list[str]:
        seen = self._classify(words)
        return [w for w in words if seen[w][0]]

    def medium(self, words: list[str]) -> list[str]:
        seen = self._classify(words)
        return [w for w in words if seen[w][1]]


def _words(text: str) -> list[str]:
    from indexes.analyzer import _EN_STOP, _ZH_STOP, _cut

    out = []
    for w in _WORD.findall(text):
        if w.isascii():
            if w.lower() not in _EN_STOP and not w.isdigit():
                out.append(w.lower())
        else:
            out += [t for t in _cut(w) if t.strip() and t not in _ZH_STOP]
    return out


def _count(words: list[str], people: list[str]) -> int:
    """A number said next to a person word: 'two people', '三个孩子', '两个人'."""
    for i, w in enumerate(words):
        if w not in people:
            continue
        for prev in words[max(0, i - 2) : i]:
            n = _NUMBER_EN.get(prev) or _zh_number(re.sub("[个位名]$", "", prev) or "x")
            if n:
                return n
    return 0


def understand(query: str, persons: PersonDetector | None = None, today: date | None = None) -> PhotoQuery:
    """Split one photo query into its description, dates, people and quoted text."""
    query = " ".join((query or "").split())
    rest, phrases, d0, d1, months = parse_dates(query, today)
    q = PhotoQuery(raw=query, text=rest or query, date_from=d0, date_to=d1, months=months, dates=phrases)
    if m := _SAYS.search(query):
        q.says = (m.group("q") or m.group("en") or m.group("zh") or "").strip(" .?!。？！")
    if persons is not None:
        words = _words(rest)
        # numbers and number+measure words ('two', '一杯', '两个') are counts, not what is counted
        q.people = persons.people([w for w in words if not _NUMBER_EN.get(w) and not _zh_number(w[:1])])
        if q.people:
            q.people_count = _count(words, q.people)
        q.medium = persons.medium(words)
    return q
