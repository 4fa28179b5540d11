"""Routing that holds on requests nobody tuned it on: a cue word inside another word or idiom
does not pick a tool, negation is honoured, device cues come from the live registry, and a
conflict or a lone hint goes to the LLM planner instead of the first cue found."""

from __future__ import annotations

import json

import pytest

from orchestrator.followup import resolve_followup
from orchestrator.router import FastRouter
from orchestrator.testing import fake_agent, fake_tools
from tools.llm import FakeChatModel
from tools.testing import FakeEdgeQueryTool, announcement


def router(*tools):
    tools = tools or fake_tools()
    return FastRouter({t.name: t for t in tools})


@pytest.mark.parametrize(
    "text, wrong",
    [
        ("What does the literature say about greenhouse gas emissions?", "edge_query"),
        ("温室气体排放对气候有什么影响？", "edge_query"),
        ("Find the document about image compression", "image_search"),
        ("找一下关于图神经网络的资料", "image_search"),
        ("做一个关于知识图谱的总结", "generate_image"),
        ("Draw a comparison between CNNs and transformers", "generate_image"),
        ("Sketch out a plan for deploying models on a Raspberry Pi", "generate_image"),
        ("What is the current status of the EU AI Act?", "edge_query"),
    ],
)
def test_a_cue_word_inside_another_word_or_idiom_picks_no_tool(text, wrong):
    route = router().route(text)
    assert route.tool != wrong and wrong not in route.candidates or route.tool is None


def test_negation_rules_the_tool_out_of_the_llms_choice():
    llm = FakeChatModel(replies=[json.dumps({"steps": [{"tool": "generate_image", "prompt": "a new image"}]})])
    agent = fake_agent(llm=llm)
    plan = agent.plan("not a photo search, I want a new image")
    assert plan.tools() == ["generate_image"]
    allowed = [
        a["properties"]["tool"]["const"] for a in llm.calls[0]["json_schema"]["properties"]["steps"]["items"]["anyOf"]
    ]
    assert "image_search" not in allowed and "generate_image" in allowed


def test_chinese_negation_keeps_the_wanted_tool():
    assert router().route("别去找现有的照片，给我画一张").tool == "generate_image"


FREEZER = announcement("freezer-7", "warehouse freezer sensor", "sensor", ("冷库传感器",), ("temperature",))


@pytest.mark.parametrize("text", ["is the warehouse freezer sensor reading normal?", "冷库传感器现在的温度是多少？"])
def test_a_device_outside_the_demo_fleet_routes_to_the_edge_when_it_is_registered(text):
    registered = router(*fake_tools()[:3], FakeEdgeQueryTool(devices=(FREEZER,)))
    route = registered.route(text)
    assert route.tool == "edge_query" and route.args["device"] == "freezer-7"
    nobody = router(*fake_tools()[:3], FakeEdgeQueryTool(devices=()))
    assert nobody.route(text).tool == "rag_answer"


def test_the_demo_fleets_names_are_not_cues_once_it_is_gone():
    nobody = router(*fake_tools()[:3], FakeEdgeQueryTool(devices=(FREEZER,)))
    assert nobody.route("What is the garden camera looking at right now?").tool != "edge_query"


def test_the_planner_prompt_names_the_registered_devices_not_the_demo_ones():
    from orchestrator.prompts import plan_messages

    tools = {t.name: t for t in [*fake_tools()[:3], FakeEdgeQueryTool(devices=(FREEZER,))]}
    system, user = (m["content"] for m in plan_messages(tools, "hi"))
    fixed, context = system.split("\nContext")
    assert "warehouse freezer sensor (freezer-7)" in context and "garden camera" not in system + user
    nobody = {t.name: t for t in [*fake_tools()[:3], FakeEdgeQueryTool(devices=())]}
    assert plan_messages(nobody, "hi")[0]["content"].startswith(fixed + "\nContext")  # the prefix stays cached


def test_talk_about_the_conversation_or_the_assistant_needs_no_tool():
    r = router()
    for text in (
        "Summarize our chat so far",
        "could you say your last answer again?",
        "你支持英文吗",
        "How is your week going?",
    ):
        assert r.route(text).zero_step, text


def test_a_clause_no_cue_claims_keeps_the_router_from_deciding_alone():
    route = router().route("draw a picture of a harbour, then another one of it at night")
    assert route.tool is None


@pytest.mark.parametrize("text", ["水污染的主要来源有哪些？", "How should I cite a dataset in a paper?"])
def test_questions_about_sources_are_ordinary_questions(text):
    agent = fake_agent()
    chat = agent.conversation()
    chat.run("What is edge AI?")
    plan, direct = resolve_followup(text, chat.turns, agent.tools)
    assert plan is None and direct == ""


def test_where_is_that_from_still_answers_from_the_last_citations():
    agent = fake_agent()
    chat = agent.conversation()
    chat.run("What is edge AI?")
    plan, direct = resolve_followup("where did that come from?", chat.turns, agent.tools)
    assert plan is not None and "kb/edge-ai.md" in direct


def test_a_planned_device_that_is_not_registered_becomes_a_question_for_the_documents():
    plan = json.dumps({"steps": [{"tool": "edge_query", "device": "cellar hygrometer", "capability": "readings"}]})
    llm = FakeChatModel(replies=[plan, plan])
    agent = fake_agent(llm=llm, tools=[*fake_tools()[:3], FakeEdgeQueryTool(devices=(FREEZER,))], use_router=False)
    result = agent.plan("how damp is it by the cellar hygrometer")
    assert result.tools() == ["rag_answer"] and "no registered device 'cellar hygrometer'" in result.note
    assert "answer a question about it from the documents" in llm.calls[1]["messages"][-1]["content"]


def test_the_planner_is_told_what_the_user_ruled_out():
    llm = FakeChatModel(replies=[json.dumps({"steps": [{"tool": "generate_image", "prompt": "a fresh one"}]})])
    fake_agent(llm=llm).plan("don't search my photos, I'd like a fresh one")
    assert "(The user does not want: image_search)" in llm.calls[0]["messages"][-1]["content"]


@pytest.mark.parametrize(
    "text",
    [
        "Turn this picture into a pencil sketch",
        "change the photo so it looks like a comic, turn it into a comic strip",
        "把这张图改成水彩画的样子",
    ],
)
def test_restyling_an_attached_photo_makes_a_new_image_rather_than_searching(text, tmp_path):
    route = router().route(text, image=str(tmp_path / "attached.jpg"))
    assert route.tool == "generate_image"


def test_an_attached_photo_with_a_second_task_is_planned_as_two_linked_steps(tmp_path):
    agent = fake_agent()
    plan = agent.plan(
        "search for pictures like this one, then make a poster out of the top result", image=str(tmp_path / "a.jpg")
    )
    assert plan.tools() == ["image_search", "generate_image"]
    assert plan.edges() == {(1, 2)}


@pytest.mark.parametrize(
    "text",
    [
        "Which was the last thing I asked you?",
        "you said something different before",
        "你用的是哪家的模型？",
        "我最开始跟你说的是什么",
        "haha you are funny",
        "你觉得我问得太多了吗",
    ],
)
def test_talk_about_the_assistant_or_what_was_said_needs_no_tool(text):
    assert router().route(text).zero_step
