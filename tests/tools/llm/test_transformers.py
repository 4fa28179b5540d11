"""The transformers backend on a tiny random model saved to a folder, and the JSON extraction it uses."""

from __future__ import annotations

import pytest

from polymodal.config import LLMConfig
from polymodal.errors import ModelUnavailable
from tools.llm.registry import get_chat_model
from tools.llm.transformers import TransformersChatModel, extract_json


def test_extract_json_finds_the_object():
    assert extract_json('Sure! {"a": "b}", "c": {"d": 1}} trailing') == '{"a": "b}", "c": {"d": 1}}'
    assert extract_json("no json") == "no json"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A tiny random Llama with a word-level tokenizer and a chat template, saved to a folder."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["<pad>", "<unk>", "<s>", "</s>", "system", "user", "assistant", ":", "hello", "world", "paris", "{", "}"]
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.chat_template = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}assistant :"
    cfg = transformers.LlamaConfig(
        vocab_size=len(words),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )
    import torch

    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    folder = tmp_path_factory.mktemp("tiny-lm")
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_transformers_backend_generates_and_streams_from_a_local_folder(tiny_lm):
    llm = get_chat_model(LLMConfig(backend="transformers", model=str(tiny_lm)))
    assert isinstance(llm, TransformersChatModel)
    msgs = [{"role": "user", "content": "hello world"}]
    text = llm.generate(msgs, max_tokens=5)
    pieces = list(llm.stream(msgs, max_tokens=5))
    assert "".join(pieces) == text  # greedy: the same output both ways
    stats = llm.last_stats()
    assert stats.prompt_tokens > 3 and 0 < stats.completion_tokens <= 5
    first = llm.loaded[1]
    assert llm.unload() and not llm.unload()  # the model manager's eviction: the weights go
    assert llm.generate(msgs, max_tokens=5) == text and llm.loaded[1] is not first  # the next call reloads


def test_transformers_missing_folder_is_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable):
        TransformersChatModel(str(tmp_path / "empty")).generate([{"role": "user", "content": "x"}])
