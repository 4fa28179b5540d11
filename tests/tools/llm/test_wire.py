"""The OpenAI request checks a bare chat model's server applies (tools/llm/wire.py)."""

from __future__ import annotations

import pytest

from polymodal.errors import InputError
from tools.llm.wire import parse_llm_request

USER = [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}]


def test_a_request_becomes_the_chat_models_arguments():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "model": "m",
        "messages": [{"role": "developer", "content": "be brief"}, *USER],
        "max_completion_tokens": 20,
        "temperature": 0.5,
        "stop": "END",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    req = parse_llm_request(body)
    assert req.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi\nthere"}]
    assert req.options() == {"max_tokens": 20, "temperature": 0.5, "json_schema": schema, "stop": ["END"]}
    assert req.stream and req.include_usage
    assert parse_llm_request({"model": "m", "messages": USER, "response_format": {"type": "json_object"}}).json_schema


@pytest.mark.parametrize(
    "change, says",
    [
        ({"model": ""}, "'model' is required"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "must not be the assistant's"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "only text content parts"),
        ({"max_tokens": 10**9}, "'max_tokens' must be an integer from 1 to 8192"),
        ({"temperature": "hot"}, "'temperature'"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "'stop'"),
        ({"response_format": {"type": "yaml"}}, "'response_format' type"),
        ({"n": 2}, "'n' must be 1"),
    ],
)
def test_a_malformed_request_is_one_input_error(change, says):
    with pytest.raises(InputError, match=says) as err:
        parse_llm_request({"model": "m", "messages": USER, **change})
    assert "\n" not in str(err.value)
