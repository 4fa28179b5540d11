"""The Agent: plan a request, run the plan, answer with citations and artifacts.

agent = Agent.from_config()                      # default tools + the offline LLM, loaded lazily
result = agent.run("总结一下知识库里关于边缘AI的要点，再找一张猫的照片")
for event in agent.stream("draw a fox"): ...     # PlanMade, StepStarted, ..., AnswerToken, Done
plan = agent.plan("what is CLIP?")               # the plan only, nothing runs
agent.as_runnable()                              # a LangChain Runnable (orchestrator/langchain.py)
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from orchestrator.answer import collect_citations, compose_answer
from orchestrator.conversation import Conversation
from orchestrator.events import AgentResult, AnswerToken, Done, Event, PlanMade, StepFinished, StepResult
from orchestrator.executor import PlanExecutor
from orchestrator.followup import resolve_followup
from orchestrator.models import ModelManager
from orchestrator.plan import Plan
from orchestrator.planner import Planner
from orchestrator.registry import ToolProblem, as_tool
from orchestrator.router import FastRouter
from polymodal import tracing
from polymodal.errors import PlanError

__all__ = ["Agent"]

log = logging.getLogger(__name__)


class Agent:
    """`tools`: Tools, typed functions or LangChain tools. `llm`: a ChatModel (or None: the
    configured one through the model manager). `embedder`: an embedder or its name for the router
    (None: cues only)."""

    def __init__(
        self,
        tools: Iterable[Any] | Mapping[str, Any],
        llm: Any = None,
        embedder: Any = None,
        config: Any = None,
        models: ModelManager | None = None,
        max_parallel: int = 4,
        step_timeout_s: float = 300.0,
        timeouts: Mapping[str, float] | None = None,
        use_router: bool = True,
        problems: list[ToolProblem] | None = None,
    ) -> None:
        items = tools.values() if isinstance(tools, Mapping) else tools
        self.tools: dict[str, Any] = {}
        for t in items:
            self.add_tool(t, _rebuild=False)
        self.config = config
        self.models = models or ModelManager(
            llm_config=getattr(config, "llm", None),
            cache_dir=config.paths.cache() if config is not None else None,
            llm=llm,
        )
        if llm is not None and models is not None:
            self.models._fixed_llm = llm
        self.problems = list(problems or [])
        self._embedder = embedder
        self._use_router = use_router
        self.executor = PlanExecutor(
            self.tools, max_parallel=max_parallel, step_timeout_s=step_timeout_s, timeouts=timeouts
        )
        self._rebuild_planner()

    @classmethod
    def from_config(cls, config: Any = None, **kwargs: Any) -> "Agent":
        """The default tools (those available) over the configured LLM; missing tools are in `problems`."""
        from orchestrator.registry import default_tools
        from polymodal.config import load_config

        config = config if config is not None else load_config()
        models = kwargs.pop("models", None) or ModelManager(
            budget_mb=config.diffusion.memory_budget_mb + 4096, llm_config=config.llm, cache_dir=config.paths.cache()
        )
        tools, problems = default_tools(config, models)
        kwargs.setdefault("embedder", config.embedder.multilingual)
        return cls(tools, config=config, models=models, problems=problems, **kwargs)

    # -- tools ------------------------------------------------------------------------------
    def add_tool(self, tool: Any, _rebuild: bool = True) -> Any:
        """Register a Tool, a typed function or a LangChain tool; the planner sees it at once."""
        tool = as_tool(tool)
        if not tool.name:
            raise ValueError("a tool needs a name")
        self.tools[tool.name] = tool
        if _rebuild:
            self._rebuild_planner()
        return tool

    def _rebuild_planner(self) -> None:
        self.router = FastRouter(self.tools, embedder=self._resolve_embedder())
        self.planner = Planner(self.tools, self.router, llm=self.models.llm, use_router=self._use_router)

    def _resolve_embedder(self) -> Any:
        emb = self._embedder
        if emb is None or not isinstance(emb, str):
            return emb
        from indexes.embedders import get_embedder

        return get_embedder(emb)  # nothing loads until the first embedding

    def warm_up(self, llm: bool = True) -> None:
        """Load the router's embedder, prefill the planner's fixed prompt, then let each tool warm
        up (`Tool.warm_up`: rag_answer prefills its answer prompts), e.g. at app start, so the first
        request pays none of it. The LLM keeps each prefix as a snapshot, so none evicts another."""
        self.router.warm_up()
        if llm:
            from orchestrator.prompts import plan_messages
            from tools.llm.base import Capabilities

            warm = Capabilities.of(self.models.llm()).warm
            if warm is None:
                return  # a backend without prefix caching: nothing to prefill
            warm(plan_messages(self.tools, "")[:1])
            for tool in self.tools.values():
                tool.warm_up()

    # -- planning and running ----------------------------------------------------------------
    def plan(self, text: str, image: str | None = None, conversation: Conversation | None = None) -> Plan:
        plan, _ = self._plan(text, image, conversation)
        return plan

    def _plan(self, text: str, image: str | None, conversation: Conversation | None) -> tuple[Plan, str]:
        if conversation is not None:
            plan, direct = resolve_followup(text, conversation.turns, self.tools)
            if plan is not None:
                return plan, direct
        history = conversation.history() if conversation is not None else None
        return self.planner.plan(text, image, history), ""

    def stream(
        self,
        text: str,
        image: str | None = None,
        conversation: Conversation | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        """The run as events. The whole of it is a `polymodal.request` span (`polymodal.tracing`),
        ended here even when the caller stops iterating early."""
        request = tracing.start_span("polymodal.request", **{"request.chars": len(text), "request.image": bool(image)})
        try:
            yield from self._stream(text, image, conversation, cancel, request)
        finally:
            request.end()

    def _stream(
        self,
        text: str,
        image: str | None,
        conversation: Conversation | None,
        cancel: threading.Event | None,
        request: Any,
    ) -> Iterator[Event]:
        under = tracing.context_with(request)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        with tracing.attached(under), tracing.span("polymodal.plan") as planning:
            try:
                plan, direct = self._plan(text, image, conversation)
            except PlanError as exc:
                plan, direct = Plan([], source="error", note=str(exc)), f"Sorry, I could not plan that: {exc}"
            tracing.annotate(planning, {"plan.source": plan.source, "plan.steps": len(plan.steps)})
        timings["plan"] = time.perf_counter() - t0
        yield PlanMade(plan)
        t1 = time.perf_counter()
        finished: dict[int, StepResult] = {}
        # A lone step that streams text (rag_answer) is the answer: forward its tokens live. The
        # final `Done.result.answer` is the checked text (citations verified), which may differ.
        live = {plan.steps[0].id} if len(plan.steps) == 1 else set()
        streamed = False
        for event in self.executor.stream(plan, cancel, stream_text=live, trace_context=under):
            if isinstance(event, StepFinished):
                finished[event.result.step_id] = event.result
            streamed = streamed or isinstance(event, AnswerToken)
            yield event
        results = [finished[s.id] for s in plan.steps if s.id in finished]
        timings["execute"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        history = conversation.history() if conversation is not None else None
        pieces: list[str] = []
        answer = compose_answer(text, results, self.models.llm, history, self.tools, direct=direct)
        for piece in tracing.iterate_in(under, answer):
            pieces.append(piece)
            if not streamed:
                yield AnswerToken(piece)
        timings["answer"] = time.perf_counter() - t2
        timings["total"] = time.perf_counter() - t0
        citations, _ = collect_citations(results)
        artifacts = [a for r in results for a in r.artifacts]
        result = AgentResult(
            "".join(pieces).strip(), plan, results, citations, artifacts, {k: round(v, 4) for k, v in timings.items()}
        )
        log.info(
            "request answered: plan by %s (%s), %d step(s) %s, %.2f s total",
            plan.source,
            ", ".join(s.tool for s in plan.steps) or "no tools",
            len(results),
            "ok" if result.ok else f"{len(result.failed)} failed",
            timings["total"],
        )
        tracing.annotate(
            request,
            {f"timing.{k}_s": v for k, v in result.timings.items()}
            | {"plan.source": plan.source, "plan.steps": len(plan.steps), "request.ok": result.ok},
        )
        yield Done(result)

    def run(
        self,
        text: str,
        image: str | None = None,
        conversation: Conversation | None = None,
        cancel: threading.Event | None = None,
    ) -> AgentResult:
        result = None
        for event in self.stream(text, image, conversation, cancel):
            if isinstance(event, Done):
                result = event.result
        assert result is not None
        return result

    def as_runnable(self) -> Any:
        """This agent as a LangChain `Runnable` (str in, answer out; invoke, stream, batch, their
        async twins, `.as_tool()`). LangChain is imported here, not with `orchestrator`."""
        from orchestrator.langchain import AgentRunnable

        return AgentRunnable(agent=self)

    # -- conversations -----------------------------------------------------------------------
    def conversation(self, id: str | None = None) -> Conversation:
        """A new conversation: its own history, isolated from every other."""
        return Conversation(self, id=id)

    def load_conversation(self, path: str | Path) -> Conversation:
        return Conversation.load(self, path)
