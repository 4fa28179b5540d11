"""The scripted fake: replies in order, calls recorded, streamed in pieces."""

from __future__ import annotations

import pytest

from tools.llm.base import ChatModel
from tools.llm.fake import FakeChatModel


def test_fake_replies_in_order_and_records_calls():
    fake = FakeChatModel(["one", lambda msgs: msgs[-1]["content"].upper()])
    assert isinstance(fake, ChatModel)
    assert fake.generate([{"role": "user", "content": "a"}], max_tokens=5) == "one"
    assert "".join(fake.stream([{"role": "user", "content": "shout"}])) == "SHOUT"
    assert fake.calls[0]["max_tokens"] == 5 and fake.calls[1]["messages"][0]["content"] == "shout"
    with pytest.raises(AssertionError):
        fake.generate([{"role": "user", "content": "x"}])


def test_fake_stream_yields_several_pieces():
    pieces = list(FakeChatModel(default="a b c d e f").stream([{"role": "user", "content": "q"}]))
    assert len(pieces) > 3 and "".join(pieces) == "a b c d e f"
