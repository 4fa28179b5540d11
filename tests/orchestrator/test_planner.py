"""The planner: router first, clause decomposition, then the LLM under a schema with one re-ask."""

from __future__ import annotations

import json

import pytest

from orchestrator.planner import Planner
from orchestrator.router import FastRouter
from orchestrator.testing import fake_tools
from polymodal.errors import ModelUnavailable, PlanError
from tools.base import FunctionTool
from tools.llm import FakeChatModel


def planner_with(llm, tools=None):
    tools = {t.name: t for t in (tools or fake_tools())}
    return Planner(tools, FastRouter(tools), llm=(lambda: llm) if llm is not None else None)


def test_clear_request_never_calls_the_llm():
    llm = FakeChatModel()
    plan = planner_with(llm).plan("find a photo of a tabby cat")
    assert plan.tools() == ["image_search"] and plan.source == "router"
    assert llm.calls == []


def test_compound_chinese_request_becomes_two_independent_steps_without_llm():
    llm = FakeChatModel()
    plan = planner_with(llm).plan("把知识库里关于边缘AI的要点总结一下，再找一张有猫的照片")
    assert plan.tools() == ["rag_answer", "image_search"] and plan.edges() == set()
    assert llm.calls == []


def test_clause_pointing_back_depends_on_the_previous_step():
    plan = planner_with(FakeChatModel()).plan(
        "Explain diffusion models from the docs and draw a picture that illustrates it"
    )
    assert plan.tools() == ["rag_answer", "generate_image"] and plan.edges() == {(1, 2)}
    assert "$1.answer" in plan.steps[1].args["prompt"]


def test_unclear_request_goes_to_the_llm_with_schema_and_examples():
    reply = json.dumps(
        {
            "steps": [
                {"tool": "image_search", "args": {"query": "sunset"}, "depends_on": []},
                {"tool": "generate_image", "args": {"prompt": "$1.images[0].path"}, "depends_on": [1]},
            ]
        }
    )
    llm = FakeChatModel([reply])
    plan = planner_with(llm).plan("sunset vibes, remixed")
    assert plan.source == "llm" and plan.tools() == ["image_search", "generate_image"] and plan.edges() == {(1, 2)}
    call = llm.calls[0]
    schema = call["json_schema"]
    alternatives = schema["properties"]["steps"]["items"]["anyOf"]
    assert {a["properties"]["tool"]["const"] for a in alternatives} == {
        "rag_answer",
        "image_search",
        "generate_image",
        "edge_query",
    }
    system = call["messages"][0]["content"]
    assert "rag_answer(question: string, k?: integer)" in system and "Request: What is federated learning?" in system
    assert call["messages"][-1]["content"].endswith("Request: sunset vibes, remixed\nPlan:")


def test_invalid_plan_is_re_asked_once_with_the_error():
    bad = json.dumps({"steps": [{"tool": "send_email", "args": {}, "depends_on": []}]})
    good = json.dumps({"steps": [{"tool": "rag_answer", "args": {"question": "x"}, "depends_on": []}]})
    llm = FakeChatModel([bad, good])
    plan = planner_with(llm).plan("hmm, mail this")
    assert plan.tools() == ["rag_answer"] and plan.note == "re-asked once"
    assert "unknown tool 'send_email'" in llm.calls[1]["messages"][-1]["content"]


def test_plan_that_stays_invalid_is_a_clear_plan_error():
    llm = FakeChatModel(
        [
            "not json",
            json.dumps({"steps": [{"tool": "rag_answer", "args": {"question": "$3.answer"}, "depends_on": []}]}),
        ]
    )
    with pytest.raises(PlanError, match="could not make a valid plan.*no step 3"):
        planner_with(llm).plan("hmm")
    assert len(llm.calls) == 2


def test_llm_may_answer_zero_steps():
    plan = planner_with(FakeChatModel(['{"steps": []}'])).plan("hmm")
    assert plan.steps == [] and plan.source == "llm"


def test_user_function_tool_is_visible_to_the_llm_planner():
    def translate(text: str, target: str = "en") -> str:
        """Translate text into another language."""
        return text

    llm = FakeChatModel(
        [json.dumps({"steps": [{"tool": "translate", "args": {"text": "你好", "target": "fr"}, "depends_on": []}]})]
    )
    plan = planner_with(llm, fake_tools() + [FunctionTool(translate)]).plan("bonjour-ify 你好")
    assert plan.steps[0].tool == "translate" and plan.steps[0].args == {"text": "你好", "target": "fr"}
    assert (
        "translate(text: string, target?: string): Translate text into another language."
        in llm.calls[0]["messages"][0]["content"]
    )


def test_no_llm_available_is_a_plan_error_naming_the_reason():
    def broken():
        raise ModelUnavailable("LLM file not found")

    tools = {t.name: t for t in fake_tools()}
    with pytest.raises(PlanError, match="LLM file not found"):
        Planner(tools, FastRouter(tools), llm=broken).plan("hmm")


def test_history_reaches_the_llm_prompt():
    llm = FakeChatModel(['{"steps": []}'])
    planner_with(llm).plan(
        "do the same again",
        history=[{"role": "user", "content": "draw a lighthouse"}, {"role": "assistant", "content": "done"}],
    )
    assert "draw a lighthouse" in llm.calls[0]["messages"][-1]["content"]


def test_router_tool_without_arguments_asks_the_llm_for_that_one_step():
    class NoHookEdge(fake_tools()[3].__class__):
        def route_args(self, text, image=None):
            return None  # e.g. the broker is not reachable yet

    reply = json.dumps(
        {
            "steps": [
                {
                    "tool": "edge_query",
                    "args": {"device": "greenhouse", "capability": "sensor_status"},
                    "depends_on": [],
                }
            ]
        }
    )
    llm = FakeChatModel([reply])
    tools = fake_tools()[:3] + [NoHookEdge()]
    plan = planner_with(llm, tools).plan("Is the greenhouse temperature sensor working normally?")
    assert plan.tools() == ["edge_query"] and plan.steps[0].args["device"] == "greenhouse"
    steps = llm.calls[0]["json_schema"]["properties"]["steps"]
    assert steps["minItems"] == steps["maxItems"] == 1
    assert [a["properties"]["tool"]["const"] for a in steps["items"]["anyOf"]] == ["edge_query"]


def test_prompt_examples_and_schema_use_the_flat_step_form_and_every_example_is_a_valid_plan():
    import re

    from orchestrator.plan import plan_from_json, validate_plan
    from orchestrator.prompts import plan_messages, plan_schema

    tools = {t.name: t for t in fake_tools()}
    system = plan_messages(tools, "hi")[0]["content"]
    shots = re.findall(r"^Plan: (.+)$", system, re.M)
    assert len(shots) >= 5
    for shot in shots:
        assert '"args"' not in shot and '"depends_on"' not in shot
        assert shot == json.dumps(json.loads(shot), ensure_ascii=False)
        validate_plan(plan_from_json(json.loads(shot)), tools)
    alternatives = plan_schema(tools)["properties"]["steps"]["items"]["anyOf"]
    rag = next(a for a in alternatives if a["properties"]["tool"] == {"const": "rag_answer"})
    assert list(rag["properties"])[:2] == ["tool", "question"] and rag["required"] == ["tool", "question"]


def test_a_tool_with_an_argument_named_like_a_wire_key_keeps_the_nested_form():
    from orchestrator.prompts import plan_schema

    def route(tool: str, args: str = "") -> str:
        """Forward a call to another system."""
        return tool + args

    tools = {"route": FunctionTool(route)}
    alt = plan_schema(tools)["properties"]["steps"]["items"]["anyOf"][0]
    assert set(alt["properties"]) == {"tool", "args", "depends_on"}
    llm = FakeChatModel([json.dumps({"steps": [{"tool": "route", "args": {"tool": "x"}, "depends_on": []}]})])
    plan = Planner(tools, FastRouter(tools, embedder=None), llm=lambda: llm, use_router=False).plan("forward x")
    assert plan.steps[0].args == {"tool": "x"}


def test_llm_plan_of_two_unlinked_steps_is_linked_when_the_later_clause_points_back():
    reply = json.dumps(
        {
            "steps": [
                {"tool": "image_search", "query": "tower"},
                {"tool": "generate_image", "prompt": "a painting of a tower"},
            ]
        }
    )
    tools = {t.name: t for t in fake_tools()}
    llm = FakeChatModel([reply, reply])
    planner = Planner(tools, FastRouter(tools, embedder=None), llm=lambda: llm, use_router=False)
    plan = planner.plan("Find a photo of a tower, then make a painting of it.")
    assert plan.edges() == {(1, 2)} and "$1." in plan.step(2).args["prompt"] and "points back" in plan.note
    plan = planner.plan("Find a photo of a tower, then make a painting of a castle.")
    assert plan.edges() == set() and plan.step(2).args == {"prompt": "a painting of a tower"}
