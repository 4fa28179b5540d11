"""Conversations: follow-ups against earlier turns, isolation, JSON save/restore."""

from __future__ import annotations

import json
import threading

import pytest

from orchestrator.testing import fake_agent
from polymodal.errors import InputError
from tools.llm import FakeChatModel


@pytest.fixture
def agent():
    return fake_agent(FakeChatModel(default="ok"))


def test_make_it_bluer_regenerates_with_the_previous_prompt_changed(agent):
    chat = agent.conversation()
    chat.run("draw a lighthouse at dusk")
    result = chat.run("make it bluer")
    assert result.plan.source == "followup" and result.plan.tools() == ["generate_image"]
    assert result.steps[0].args["prompt"] == "a lighthouse at dusk, bluer"
    chinese = chat.run("让它变得更亮一点")
    assert chinese.steps[0].args["prompt"] == "a lighthouse at dusk, bluer, 更亮一点"


def test_and_the_greenhouse_re_asks_the_edge_question_of_another_device(agent):
    chat = agent.conversation()
    first = chat.run("What is the garden camera looking at right now?")
    assert first.steps[0].args["device"] == "garden-camera"
    second = chat.run("and the greenhouse?")
    assert second.plan.tools() == ["edge_query"] and second.steps[0].args["device"] == "greenhouse"
    assert second.steps[0].value.data["status"] == "normal"
    third = chat.run("那门口呢？")
    assert third.steps[0].args["device"] == "door"  # the edge tool's own alias lookup


def test_where_did_that_come_from_shows_the_previous_citations(agent):
    chat = agent.conversation()
    chat.run("What is edge AI?")
    result = chat.run("where did that come from?")
    assert result.plan.steps == []
    assert "[1] kb/edge-ai.md § Edge AI > Deployment (chars 120-220)" in result.answer
    assert "A passage about" in result.answer
    assert "kb/edge-ai.md" in chat.run("出处是哪里？").answer


def test_follow_up_without_history_is_an_ordinary_request(agent):
    result = agent.conversation().run("make it bluer")
    assert result.plan.source != "followup"


def test_conversations_are_isolated_even_when_concurrent(agent):
    chats = [agent.conversation() for _ in range(6)]
    barrier = threading.Barrier(len(chats))

    def talk(i, chat):
        barrier.wait()
        chat.run(f"draw a picture of a boat number {i}")
        chat.run("make it bluer")

    threads = [threading.Thread(target=talk, args=(i, c)) for i, c in enumerate(chats)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, chat in enumerate(chats):
        assert [t.request for t in chat.turns] == [f"draw a picture of a boat number {i}", "make it bluer"]
        assert chat.turns[1].steps[0]["args"]["prompt"] == f"a boat number {i}, bluer"


def test_save_and_restore_round_trip_keeps_follow_ups_working(agent, tmp_path):
    chat = agent.conversation()
    chat.run("draw a lighthouse at dusk")
    path = chat.save(tmp_path / "chat.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "polymodal.conversation/1" and data["turns"][0]["request"] == "draw a lighthouse at dusk"
    again = agent.load_conversation(path)
    assert again.id == chat.id and again.to_dict() == chat.to_dict()
    assert again.run("make it bluer").steps[0].args["prompt"] == "a lighthouse at dusk, bluer"
    assert len(chat.turns) == 1  # the original is untouched


def test_loading_a_bad_file_is_a_one_line_input_error(agent, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a saved polymodal conversation"):
        agent.load_conversation(bad)
    with pytest.raises(InputError, match="not found"):
        agent.load_conversation(tmp_path / "missing.json")
    bad.write_text("{nope")
    with pytest.raises(InputError, match="cannot read"):
        agent.load_conversation(bad)


def test_history_is_passed_to_small_talk(agent):
    llm = FakeChatModel(default="fine")
    agent = fake_agent(llm)
    chat = agent.conversation()
    chat.run("What is edge AI?")
    chat.run("thanks!")
    messages = llm.calls[-1]["messages"]
    assert {"role": "user", "content": "What is edge AI?"} in messages
