"""The extractive decoding constraint, on a toy byte-level vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from tools.llm.copy_constraint import CopyConstraint, TokenIndex

EOS = 0
_PIECES = [
    "<eos>",
    "the",
    " bridge",
    " is",
    " forty",
    " meters",
    " long",
    ".",
    " old",
    "[",
    "1",
    "]",
    "[2]",
    "NOT",
    "_FOUND",
    "FOUND",
    " wide",
    "青",
    "石",
    "镇",
    "桥",
    "长",
    "四十",
    "米",
]
PIECES = [b""] + [p.encode() for p in _PIECES[1:]]
PIECES += ["镇".encode()[:1], "镇".encode()[1:]]  # one character split across two tokens, as byte-level BPE does
ID = {p: i for i, p in enumerate(_PIECES)}
SPLIT_HEAD, SPLIT_TAIL = len(PIECES) - 2, len(PIECES) - 1


@pytest.fixture(scope="module")
def index():
    return TokenIndex(PIECES, eos_ids=[EOS])


def logits_for(*preferred: int) -> np.ndarray:
    """Logits ranking `preferred` first (in order), everything else far below."""
    out = np.full(len(PIECES), -10.0)
    for rank, tok in enumerate(preferred):
        out[tok] = 10.0 - rank
    return out


def decode(constraint: CopyConstraint, plan: list[list[int]]) -> bytes:
    """Greedy decoding where step i prefers the tokens of plan[i] in order."""
    out = b""
    for preferred in plan:
        tok = constraint.choose(logits_for(*preferred))
        if tok is None or tok == EOS:
            break
        out += PIECES[tok]
    return out


def test_only_spans_of_the_sources_can_start_and_continue(index):
    c = CopyConstraint(index, ["the bridge is forty meters long."])
    start = set(c.allowed())
    assert {ID["the"], ID[" bridge"], ID[" forty"], ID["."]} <= start
    assert ID[" wide"] not in start and ID[" old"] not in start and EOS not in start  # nothing copied: no stop
    c.accept(ID[" forty"])
    assert set(c.allowed()) == {ID[" meters"], EOS, ID["["], ID["[2]"]}


def test_the_best_allowed_token_wins_over_a_paraphrase(index):
    c = CopyConstraint(index, ["the bridge is forty meters long."])
    # the model would rather say " wide" (not in the source) and then " old"
    out = decode(c, [[ID[" wide"], ID[" forty"]], [ID[" old"], ID[" meters"]], [EOS]])
    assert out == b" forty meters"
    assert c.done


def test_a_citation_closes_the_reply(index):
    c = CopyConstraint(index, ["the bridge is forty meters long."])
    out = decode(c, [[ID[" forty"]], [ID[" meters"]], [ID["["]], [ID["1"]], [ID["]"]], [ID[" long"]]])
    assert out == b" forty meters[1]" and c.done and c.allowed() == []
    c2 = CopyConstraint(index, ["the bridge is forty meters long."])
    assert decode(c2, [[ID[" forty"]], [ID["[2]"]], [ID[" long"]]]) == b" forty[2]" and c2.done


def test_anchored_replies_only_start_at_their_beginning(index):
    c = CopyConstraint(index, ["the bridge is forty meters long."], anchored=["NOT_FOUND"])
    assert ID["NOT"] in c.allowed() and ID["FOUND"] not in c.allowed() and ID["_FOUND"] not in c.allowed()
    assert decode(c, [[ID["NOT"]], [ID[" forty"], ID["_FOUND"]], [EOS]]) == b"NOT_FOUND"


def test_characters_split_across_tokens_and_multi_character_tokens(index):
    c = CopyConstraint(index, ["青石镇的桥长四十米。"])
    out = decode(c, [[ID["石"]], [SPLIT_HEAD], [EOS, SPLIT_TAIL], [EOS]])
    assert out.decode() == "石镇"  # no stop inside the split character
    c = CopyConstraint(index, ["青石镇的桥长四十米。"])
    assert decode(c, [[ID["长"]], [ID["四十"]], [ID["米"]], [EOS]]).decode() == "长四十米"


def test_a_token_outside_the_constraint_is_a_programming_error(index):
    c = CopyConstraint(index, ["the bridge"])
    with pytest.raises(ValueError):
        c.accept(ID[" forty"])
