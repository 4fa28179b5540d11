"""The Agent as a LangChain Runnable (orchestrator/langchain.py), over the fake agent: every Runnable
entry point, a chain, `.as_tool()`, the README's example as written, and `import orchestrator` still
without LangChain."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from orchestrator.testing import fake_agent
from polymodal.errors import InputError

README = Path(__file__).resolve().parents[2] / "README.md"
PHOTOS = "find photos of a cat"
KB = "总结一下知识库里关于边缘AI的要点"


@pytest.fixture
def agent():
    return fake_agent()


def test_invoke_answers_as_agent_run_does(agent):
    runnable = agent.as_runnable()
    assert isinstance(runnable, Runnable)
    answer = runnable.invoke(PHOTOS)
    assert answer == agent.run(PHOTOS).answer and "/photos/a-cat-0.jpg" in answer


def test_stream_pieces_join_to_the_answer(agent):
    runnable = agent.as_runnable()
    pieces = list(runnable.stream(KB))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces).strip() == runnable.invoke(KB)


def test_batch_keeps_order(agent):
    assert agent.as_runnable().batch([PHOTOS, KB]) == [agent.run(PHOTOS).answer, agent.run(KB).answer]


def test_async_entry_points(agent):
    runnable = agent.as_runnable()

    async def main() -> tuple[str, list[str], list[str]]:
        one = await runnable.ainvoke(PHOTOS)
        pieces = [p async for p in runnable.astream(KB)]
        many = await runnable.abatch([PHOTOS, KB])
        return one, pieces, many

    one, pieces, many = asyncio.run(main())
    assert one == agent.run(PHOTOS).answer
    assert "".join(pieces).strip() == agent.run(KB).answer
    assert many == [agent.run(PHOTOS).answer, agent.run(KB).answer]


def test_in_a_chain_with_a_prompt_and_messages(agent):
    chain = ChatPromptTemplate.from_template("find photos of {subject}") | agent.as_runnable() | StrOutputParser()
    assert chain.invoke({"subject": "a cat"}) == agent.run(PHOTOS).answer
    history = [HumanMessage("hello"), AIMessage("hi"), HumanMessage(PHOTOS)]
    assert agent.as_runnable().invoke(history) == agent.run(PHOTOS).answer  # the last human message


def test_dict_input_carries_an_image(agent, tmp_path):
    seen = []
    real_run = agent.run
    agent.run = lambda text, image=None: (seen.append((text, image)), real_run(text, image))[1]
    agent.as_runnable().invoke({"input": PHOTOS, "image": tmp_path / "q.jpg"})
    assert seen == [(PHOTOS, str(tmp_path / "q.jpg"))]


def test_as_tool_takes_the_request_text(agent):
    tool = agent.as_runnable().as_tool(name="polymodal", description="Ask polymodal.")
    assert tool.name == "polymodal" and tool.description == "Ask polymodal."
    assert tool.invoke(PHOTOS) == agent.run(PHOTOS).answer
    assert asyncio.run(tool.ainvoke(PHOTOS)) == agent.run(PHOTOS).answer


def test_unusable_input_is_a_one_line_input_error(agent):
    with pytest.raises(InputError, match="a dict with 'input'"):
        agent.as_runnable().invoke({"nothing": 1})


def test_readme_langchain_example_runs_with_the_fake_agent(monkeypatch, capsys):
    section = README.read_text(encoding="utf-8").split("\n## LangChain\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    from orchestrator import Agent

    agent = fake_agent()
    monkeypatch.setattr(Agent, "from_config", classmethod(lambda cls, *a, **k: agent))
    exec(compile(code, "README.md#langchain", "exec"), {})
    out = capsys.readouterr().out
    assert out.count("/photos/a-cat-0.jpg") == 2 and agent.run(KB).answer in out


def test_import_orchestrator_leaves_langchain_out():
    code = "import sys, orchestrator; print(sorted(m for m in sys.modules if m.startswith('langchain')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
