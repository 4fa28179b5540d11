"""The model manager: lazy single loads, shared LLM, LRU eviction within the memory budget."""

from __future__ import annotations

import threading

import pytest

from orchestrator.models import ModelManager, process_rss_mb
from polymodal.config import LLMConfig
from tools.llm import FakeChatModel


def test_concurrent_first_users_share_one_load():
    loads = []
    gate = threading.Event()

    def load():
        loads.append(1)
        gate.wait(5)
        return object()

    mm = ModelManager()
    got = []
    threads = [threading.Thread(target=lambda: got.append(mm.get("m", load, size_mb=10))) for _ in range(5)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert len(loads) == 1 and len({id(g) for g in got}) == 1


def test_least_recently_used_model_is_evicted_to_fit_the_budget():
    unloaded = []
    mm = ModelManager(budget_mb=1000)
    mm.get("a", lambda: "A", size_mb=400, unload=unloaded.append)
    mm.get("b", lambda: "B", size_mb=400, unload=unloaded.append)
    mm.get("a", lambda: "A2", size_mb=400)  # touch a: b is now least recently used
    mm.get("c", lambda: "C", size_mb=400, unload=unloaded.append)
    assert unloaded == ["B"] and mm.evictions == ["b"]
    assert [k for k, _ in mm.loaded()] == ["a", "c"] and mm.used_mb == 800
    assert mm.get("b", lambda: "B again", size_mb=400) == "B again"


def test_a_model_bigger_than_the_budget_still_loads_alone():
    mm = ModelManager(budget_mb=100)
    mm.get("a", lambda: 1, size_mb=50)
    assert mm.get("big", lambda: 2, size_mb=500) == 2 and [k for k, _ in mm.loaded()] == ["big"]


def test_llm_is_one_shared_instance_from_the_config():
    mm = ModelManager(llm_config=LLMConfig(backend="fake"))
    first = mm.llm()
    assert first is mm.llm() and isinstance(first, FakeChatModel)
    assert mm.loaded() == [("llm", 2048)]


def test_injected_llm_wins():
    fake = FakeChatModel()
    assert ModelManager(llm=fake).llm() is fake


@pytest.mark.slow
def test_evicting_the_real_llm_frees_its_memory_and_the_next_call_reloads_it():
    """The offline GGUF through llama.cpp: eviction must close it (its RSS goes), not only
    drop the manager's 2 GB from the budget while the module cache keeps the model alive."""
    from polymodal.errors import ModelUnavailable
    from polymodal.lazy import load_once

    mm = ModelManager(budget_mb=3000)
    llm = mm.llm()
    try:
        assert llm.generate([{"role": "user", "content": "Say hi."}], max_tokens=4)
    except ModelUnavailable as exc:
        pytest.fail(f"the offline LLM should be built by `make setup`: {exc}")
    loaded_mb = process_rss_mb()
    mm.get("diffusion", lambda: object(), size_mb=2000)  # 2048 + 2000 > 3000: the LLM goes
    assert mm.evictions == ["llm"] and not load_once.loaded(llm, "llm")
    freed_mb = loaded_mb - process_rss_mb()
    assert freed_mb > 1024, f"evicting the LLM freed only {freed_mb:.0f} MB of RSS"
    again = mm.llm()
    assert again is llm and again.generate([{"role": "user", "content": "Say hi."}], max_tokens=4)
    assert load_once.loaded(llm, "llm")
