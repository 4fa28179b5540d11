"""The OpenAI wire format without a server: request checks, history, path swapping, turn memory."""

from __future__ import annotations

import base64

import pytest

from orchestrator.conversation import Turn
from orchestrator.serve.wire import MediaStore, PathRewriter, TurnMemory, parse_chat_request, swap_paths
from polymodal.errors import InputError


def test_messages_become_the_request_and_its_history():
    req = parse_chat_request(
        {
            "model": "polymodal",
            "stream": True,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "find a cat"},
            ],
        },
        "polymodal",
    )
    assert (req.text, req.history, req.stream, req.image) == ("find a cat", [("hi", "hello")], True, None)


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "the request body must be a JSON object"),
        ({"model": "polymodal", "messages": []}, "'messages' must be a non-empty list"),
        ({"model": "polymodal", "messages": [{"role": "robot", "content": "x"}]}, "'role' must be one of"),
        ({"model": "polymodal", "messages": [{"role": "user", "content": "  "}]}, "non-empty user message"),
        ({"model": "polymodal", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "'stream'"),
        (
            {
                "model": "p",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "http://x/a.png"}]}],
            },
            "the server fetches no URLs",
        ),
        ({"model": "p", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "'audio' is not supported"),
    ],
)
def test_malformed_requests_are_one_line_input_errors(body, message):
    with pytest.raises(InputError, match=message) as err:
        parse_chat_request(body, "polymodal")
    assert "\n" not in str(err.value)


def test_an_attached_image_comes_as_bytes():
    png = b"\x89PNG fake"
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    content = [{"type": "text", "text": "more like this"}, {"type": "image_url", "image_url": {"url": url}}]
    req = parse_chat_request({"model": "p", "messages": [{"role": "user", "content": content}]}, "p")
    assert req.image == png and req.text == "more like this"


def test_paths_split_across_tokens_are_still_replaced():
    rewriter = PathRewriter({"/tmp/out/fox-1.png": "http://h/v1/media/T/fox-1.png"})
    pieces = ["Here: /tmp/o", "ut/fox", "-1.png and /tmp/other", " too"]
    text = "".join(rewriter.feed(p) for p in pieces) + rewriter.flush()
    assert text == "Here: http://h/v1/media/T/fox-1.png and /tmp/other too"


def test_swap_paths_reaches_nested_values():
    urls = {"/a/b.png": "http://h/m/b.png"}
    assert swap_paths({"plan": [{"args": {"image": "/a/b.png"}}], "n": 3}, urls) == {
        "plan": [{"args": {"image": "http://h/m/b.png"}}],
        "n": 3,
    }


def test_turn_memory_returns_only_the_exact_exchange():
    memory = TurnMemory(size=2)
    turn = Turn("draw a fox", "here is a fox", plan={"steps": [{"tool": "generate_image"}]})
    memory.remember("draw a fox", "here is a fox", turn)
    assert memory.turns([("draw a fox", "here is a fox")])[0] is turn
    (other,) = memory.turns([("draw a fox", "a different answer")])
    assert other is not turn and other.plan == {}
    memory.remember("a", "b", Turn("a", "b"))
    memory.remember("c", "d", Turn("c", "d"))  # the oldest is forgotten
    assert memory.turns([("draw a fox", "here is a fox")])[0] is not turn


def test_media_urls_are_tokens_and_missing_files_are_not_served(tmp_path):
    media = MediaStore()
    f = tmp_path / "cat.png"
    f.write_bytes(b"x")
    url = media.url(str(f), "http://h/")
    assert url.startswith("http://h/v1/media/") and str(tmp_path) not in url and url == media.url(str(f), "http://h/")
    token = url.split("/")[-2]
    assert media.path(token) == f and media.path("nope") is None
    f.unlink()
    assert media.path(token) is None
