"""Citation parsing, checking and the streaming filter."""

from __future__ import annotations

import pytest

from tools.citations import CitationStreamFilter, check_citations, strip_citations, support

P = {1: "Paris is the capital of France.", 2: "The llama is a camelid from South America."}


def test_valid_markers_kept_invented_removed():
    out = check_citations("Paris is the capital of France [1][3]. Llamas are camelids [2, 9].", P)
    assert out.text == "Paris is the capital of France [1]. Llamas are camelids [2]."
    assert out.cited == [1, 2] and sorted(out.removed) == [3, 9] and out.unsupported_sentences == []


def test_marker_naming_an_unrelated_passage_is_removed():
    out = check_citations("Llamas come from South America [1].", P)
    assert out.cited == [] and out.removed == [1]
    assert out.unsupported_sentences == ["Llamas come from South America."]


def test_ranges_fullwidth_brackets_and_uncited_sentences():
    out = check_citations("巴黎是法国的首都【1】。骆驼很可爱。", {1: "巴黎是法国的首都和最大城市。"})
    assert out.text == "巴黎是法国的首都[1]。骆驼很可爱。" and out.unsupported_sentences == ["骆驼很可爱。"]
    assert check_citations("Paris and llamas [1-2].", P).cited == [1, 2]


def test_verbatim_short_answer_gets_its_passage():
    out = check_citations("a camelid from South America", P)
    assert out.cited == [2] and out.text == "a camelid from South America [2]"


def test_support_is_lexical_share():
    assert support("capital of France", P[1]) == 1.0
    assert support("camelid", P[1]) == 0.0
    assert strip_citations("x [1] y [2,3]") == "x y"
    assert strip_citations("越南建设银行（[1]，[2]）") == "越南建设银行"
    assert strip_citations("a (see [1]) b (x)") == "a (see) b (x)"


def _stream(pieces, valid):
    f = CitationStreamFilter(valid)
    out = []
    for p in pieces:
        out.extend(f.feed(p))
    out.extend(f.flush())
    return "".join(out)


@pytest.mark.parametrize(
    "pieces",
    [
        ["Paris [1", "] is nice [", "7]. Done [2]."],
        ["Paris [1] is nice", " ", "[7]", ". Done [2", "]."],
        list("Paris [1] is nice [7]. Done [2]."),
    ],
)
def test_stream_filter_drops_invented_markers_across_piece_boundaries(pieces):
    assert _stream(pieces, {1, 2}) == "Paris [1] is nice. Done [2]."


def test_stream_filter_releases_brackets_that_are_not_markers():
    assert _stream(["see [note] and [[1]] and [", "1, 4]"], {1}) == "see [note] and [[1]] and [1]"
    assert _stream(["an open [ bracket that never closes at all"], {1}) == "an open [ bracket that never closes at all"


def test_a_wrong_marker_is_replaced_by_the_passage_the_answer_is_copied_from():
    passages = {1: "本年总决赛的最有价值球员奖由保罗·皮尔斯获得。", 2: "凯尔特人队在波士顿主场比赛。"}
    checked = check_citations("保罗·皮尔斯[2]", passages)
    assert checked.cited == [1] and checked.removed == [2] and checked.text == "保罗·皮尔斯[1]"
    # a sentence that no passage holds stays unsupported: nothing is cited for it
    invented = check_citations("迈克尔·乔丹获得了该奖[2]。", passages)
    assert invented.cited == [] and invented.unsupported_sentences == ["迈克尔·乔丹获得了该奖。"]
