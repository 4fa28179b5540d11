"""The Agent: plan + run + answer, streamed events, citations, artifacts, failures, user tools."""

from __future__ import annotations

import json

from orchestrator import Agent
from orchestrator.events import AnswerToken, Done, PlanMade, StepFinished, StepProgress, StepStarted
from orchestrator.testing import BrokenGenerateTool, FakeEdgeQueryTool, FakeImageSearchTool, FakeRagTool, fake_agent
from polymodal.config import Config
from tools.base import ToolResult
from tools.llm import FakeChatModel


def test_the_issue_example_plans_two_steps_and_answers_with_citations_and_the_photo():
    llm = FakeChatModel(default="边缘AI把模型放在设备上运行 [1]。这是一张猫的照片。")
    result = fake_agent(llm).run("把知识库里关于边缘AI的要点总结一下，再找一张有猫的照片")
    assert result.plan.tools() == ["rag_answer", "image_search"]
    assert result.ok and [s.tool for s in result.steps] == ["rag_answer", "image_search"]
    assert result.answer.startswith("边缘AI把模型放在设备上运行 [1]")
    assert result.citations[0].source == "kb/edge-ai.md"
    assert result.artifacts[0].startswith("/photos/")
    combine = llm.calls[-1]["messages"]
    assert "[step 1: rag_answer]" in combine[1]["content"] and "[step 2: image_search]" in combine[1]["content"]
    assert set(result.timings) == {"plan", "execute", "answer", "total"}


def test_single_rag_step_answer_is_used_as_is_without_the_llm():
    llm = FakeChatModel()
    result = fake_agent(llm).run("What is CLIP?")
    assert result.answer == "Answer about What is CLIP? [1]" and llm.calls == []
    assert len(result.citations) == 1


def test_stream_yields_typed_events_in_order():
    events = list(fake_agent().stream("draw a picture of a red fox on a frozen lake"))
    kinds = [type(e) for e in events]
    assert kinds[0] is PlanMade and kinds[1] is StepStarted and kinds[-1] is Done
    assert StepProgress in kinds and StepFinished in kinds and AnswerToken in kinds
    assert kinds.index(StepFinished) < kinds.index(AnswerToken)
    done = events[-1].result
    assert done.artifacts == ["/generated/a-red-fox-on-a-frozen-lake-0.png"]
    assert "".join(e.text for e in events if isinstance(e, AnswerToken)).strip() == done.answer


def test_failed_step_is_named_in_the_answer_and_other_steps_complete():
    llm = FakeChatModel(default="Here is what I found about edge AI [1].")
    agent = fake_agent(llm, tools=[FakeRagTool(), FakeImageSearchTool(), BrokenGenerateTool(), FakeEdgeQueryTool()])
    result = agent.run("Summarize the knowledge base on edge AI, then draw a picture of a robot")
    assert [s.ok for s in result.steps] == [True, False]
    assert "generate_image (step 2) did not complete: no diffusion weights configured" in result.answer
    assert result.citations


def test_combined_answer_restores_dropped_citations_and_reading_time():
    llm = FakeChatModel(default="The greenhouse looks fine and edge AI is neat.")
    result = fake_agent(llm).run("温室的温度传感器现在正常吗？另外总结一下知识库里关于边缘AI的要点")
    assert sorted(result.plan.tools()) == ["edge_query", "rag_answer"]
    assert "[1]" in result.answer and "2026-01-01T12:00:00Z" in result.answer


def test_zero_step_small_talk_uses_the_llm_with_no_tools():
    llm = FakeChatModel(default="Hi! How can I help?")
    result = fake_agent(llm).run("hello")
    assert result.plan.steps == [] and result.answer == "Hi! How can I help?"


def test_unplannable_request_gives_a_clear_message_not_an_exception():
    llm = FakeChatModel(["garbage", "still garbage"], default="x")
    result = fake_agent(llm).run("zxqv")
    assert result.plan.source == "error" and result.answer.startswith("Sorry, I could not plan that:")


def test_user_function_tool_plugs_in_and_runs():
    def word_count(text: str) -> int:
        """Count the words in a text."""
        return len(text.split())

    llm = FakeChatModel(
        [json.dumps({"steps": [{"tool": "word_count", "args": {"text": "one two three"}, "depends_on": []}]})]
    )
    agent = fake_agent(llm)
    agent.add_tool(word_count)
    result = agent.run("zxqv count")
    assert result.steps[0].value == 3 and result.answer == "3"


def test_langchain_tool_plugs_in():
    from langchain_core.tools import tool

    @tool
    def shout(text: str) -> str:
        """Return the text in capitals."""
        return text.upper()

    agent = fake_agent(
        FakeChatModel([json.dumps({"steps": [{"tool": "shout", "args": {"text": "hey"}, "depends_on": []}]})])
    )
    agent.add_tool(shout)
    assert "shout" in agent.tools and agent.run("zxqv").steps[0].value == "HEY"


def test_plan_only_does_not_run_tools():
    class CountingRag(FakeRagTool):
        runs = 0

        def run(self, question: str, k: int = 4):
            CountingRag.runs += 1
            return super().run(question, k)

    agent = fake_agent(tools=[CountingRag()])
    assert agent.plan("What is CLIP?").tools() == ["rag_answer"] and CountingRag.runs == 0


def test_from_config_reports_unavailable_tools_and_still_works(monkeypatch):
    import orchestrator.registry as registry

    monkeypatch.setattr(registry, "DEFAULT_TOOLS", {"rag_answer": "tools.testing", "image_search": "not_a_module.nope"})
    cfg = Config.from_dict({"llm": {"backend": "fake"}})
    agent = Agent.from_config(cfg, embedder="hash")
    assert list(agent.tools) == ["rag_answer"]
    assert [p.tool for p in agent.problems] == ["image_search"] and "not installed" in agent.problems[0].reason
    assert agent.run("What is CLIP?").answer == "Answer about What is CLIP? [1]"


def test_a_lone_streaming_step_forwards_its_tokens_live_and_done_has_the_checked_answer():
    from dataclasses import dataclass

    @dataclass
    class Checked(ToolResult):
        answer: str

        def summary(self):
            return self.answer

    class StreamingRag(FakeRagTool):
        def stream(self, question: str, k: int = 4, *, context=None):
            yield "Edge AI "
            yield "runs locally [1] [9]"
            yield Checked("Edge AI runs locally [1]")  # the invented [9] removed after checking

    events = list(fake_agent(tools=[StreamingRag()]).stream("What is edge AI?"))
    tokens = [e.text for e in events if isinstance(e, AnswerToken)]
    assert tokens == ["Edge AI ", "runs locally [1] [9]"]
    assert events.index(next(e for e in events if isinstance(e, AnswerToken))) < events.index(
        next(e for e in events if isinstance(e, StepFinished))
    )
    assert events[-1].result.answer == "Edge AI runs locally [1]"


def test_warm_up_prefills_the_planner_prompt_when_the_model_can():
    class WarmFake(FakeChatModel):
        warmed = None

        def warm(self, prefix):
            WarmFake.warmed = prefix

    agent = fake_agent(WarmFake())
    agent.warm_up()
    assert WarmFake.warmed[0]["role"] == "system" and "rag_answer(" in WarmFake.warmed[0]["content"]


def test_warm_up_also_prefills_the_rag_answer_prefixes_after_the_planner(tmp_path):
    from orchestrator.testing import fake_tools
    from tools.rag import RagAnswerTool
    from tools.rag_prompt import PromptParts

    class WarmFake(FakeChatModel):
        def __init__(self):
            super().__init__(default="ok")
            self.warmed = []

        def warm(self, prefix):
            self.warmed.append(prefix)

    llm = WarmFake()
    rag = RagAnswerTool(tmp_path / "kb", config=Config(), llm=llm)
    agent = fake_agent(llm, tools=[t for t in fake_tools() if t.name != "rag_answer"] + [rag])
    agent.warm_up()
    assert "rag_answer(" in llm.warmed[0][0]["content"]  # the planner's first: every LLM-planned request needs it
    assert llm.warmed[1:] == [PromptParts("zh", False).prefix(), PromptParts("en", False).prefix()]
