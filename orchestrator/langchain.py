"""The Agent as a LangChain `Runnable` (imported on demand: `import orchestrator` never loads LangChain).

runnable = agent.as_runnable()                    # str in, the answer (str) out
runnable.invoke("what does the garden camera see?"); runnable.stream("..."); await runnable.ainvoke("...")
chain = ChatPromptTemplate.from_template("Summarise {topic}") | runnable | StrOutputParser()
tool = runnable.as_tool(name="polymodal", description="...")   # for another agent

The input is a string, a prompt value (from a prompt template), a list of messages (the last human
message is the request) or a dict with "input" (or "question") and optional "image". `stream` yields
the answer's text pieces; `agent.run()` gives the full `AgentResult` (plan, steps, citations).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Iterator

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from orchestrator.events import AnswerToken, Done
from polymodal.errors import InputError

__all__ = ["AgentRunnable"]

_END = object()


def request_of(value: Any) -> tuple[str, str | None]:
    """(text, image path) from what a LangChain chain passes along."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, PromptValue):
        value = value.to_messages()  # a chat prompt's text would carry "Human: " prefixes
    if isinstance(value, list) and value and all(isinstance(m, BaseMessage) for m in value):
        human = [m for m in value if m.type == "human"] or value
        return human[-1].text, None
    if isinstance(value, dict):
        text = value.get("input", value.get("question"))
        if isinstance(text, str):
            image = value.get("image")
            return text, str(image) if image else None
    raise InputError(f"the agent takes a string, a prompt, messages or a dict with 'input', not {type(value).__name__}")


class AgentRunnable(RunnableSerializable[str, str]):
    """Answers a request with a polymodal Agent: plans it, runs its tools, returns the answer text."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    agent: Any = Field(exclude=True)
    name: str | None = "polymodal_agent"

    def _answer(self, value: Any) -> str:
        text, image = request_of(value)
        return self.agent.run(text, image=image).answer

    def _pieces(self, values: Iterator[Any], cancel: threading.Event | None = None) -> Iterator[str]:
        for value in values:
            text, image = request_of(value)
            streamed = False
            for event in self.agent.stream(text, image=image, cancel=cancel):
                if isinstance(event, AnswerToken) and event.text:
                    streamed = True
                    yield event.text
                elif isinstance(event, Done) and not streamed:
                    yield event.result.answer

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return self._call_with_config(self._answer, input, config, run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return await run_in_executor(config, self.invoke, input, config)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str]:
        yield from self._transform_stream_with_config(iter([input]), self._pieces, config, run_type="chain")

    def transform(self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[str]:
        yield from self._transform_stream_with_config(input, self._pieces, config, run_type="chain")

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[str]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for piece in self.atransform(one(), config, **kwargs):
            yield piece

    async def atransform(
        self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        async for piece in self._atransform_stream_with_config(input, self._apieces, config, run_type="chain"):
            yield piece

    async def _apieces(self, values: AsyncIterator[Any]) -> AsyncIterator[str]:
        """The sync stream, one piece at a time on a worker thread; an abandoned stream cancels the run."""
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        async for value in values:
            pieces = self._pieces(iter([value]), cancel)
            try:
                while (piece := await loop.run_in_executor(None, next, pieces, _END)) is not _END:
                    yield piece
            finally:
                cancel.set()
