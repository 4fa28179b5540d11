"""The LLM planner on the real offline model (Qwen2.5-Coder-1.5B via llama.cpp), router off."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planner():
    from orchestrator.planner import Planner
    from orchestrator.router import FastRouter
    from orchestrator.testing import fake_tools
    from polymodal.errors import ModelUnavailable
    from tools.llm import get_chat_model

    llm = get_chat_model()
    try:
        llm.generate([{"role": "user", "content": "hi"}], max_tokens=1)
    except ModelUnavailable as exc:
        pytest.fail(f"the offline LLM should be built by `make setup`: {exc}")
    tools = {t.name: t for t in fake_tools()}
    return Planner(tools, FastRouter(tools), llm=lambda: llm, use_router=False)


@pytest.mark.parametrize(
    "text, tools, edges",
    [
        ("把知识库里关于边缘AI的要点总结一下，再找一张有猫的照片", ["image_search", "rag_answer"], set()),
        ("Find a photo of a tower, then make a painting of it.", ["generate_image", "image_search"], {(1, 2)}),
        (
            "Check the greenhouse sensor status, summarize the docs on edge AI, and draw a wind farm.",
            ["edge_query", "generate_image", "rag_answer"],
            None,
        ),
        ("hello", [], set()),
    ],
)
def test_real_llm_plans_are_valid_and_pick_the_right_tools(planner, text, tools, edges):
    plan = planner.plan(text)
    assert plan.source == "llm"
    assert sorted(plan.tools()) == tools
    if edges is not None:
        assert plan.edges() == edges
    for step in plan.steps:  # validated: every argument fits its tool
        assert set(step.args) <= set(planner.tools[step.tool].input_schema["properties"])
