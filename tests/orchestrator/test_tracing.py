"""OpenTelemetry spans of a fake-agent run, caught by the SDK's InMemorySpanExporter: request > plan,
request > step > llm, request > llm (the combined answer), with tokens, timings, tool and device id;
and a run without the package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.plan import Plan, PlanStep
from orchestrator.testing import fake_agent, fake_tools
from polymodal import tracing
from tools.base import FunctionTool
from tools.llm import FakeChatModel

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")  # the otel extra, which the Makefile installs
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    yield exporter
    tracing.use_tracer_provider(None)


def _agent_with_an_llm_tool():
    step_llm = FakeChatModel(default="a summary", name="step-llm")

    def summarise(text: str) -> str:
        """Summarise a text with the LLM."""
        return step_llm.generate([{"role": "user", "content": text}])

    answer_llm = FakeChatModel(default="the combined answer", name="answer-llm")
    return fake_agent(llm=answer_llm, tools=[*fake_tools(), FunctionTool(summarise)])


def test_request_plan_steps_and_llm_calls_nest(spans):
    agent = _agent_with_an_llm_tool()
    plan = Plan(
        [
            PlanStep(1, "summarise", {"text": "edge AI notes"}),
            PlanStep(2, "edge_query", {"device": "garden-camera", "capability": "classify"}),
        ]
    )
    agent.planner.plan = lambda *a, **k: plan
    result = agent.run("summarise my notes and ask the garden camera")
    assert result.ok

    finished = spans.get_finished_spans()
    by_name: dict[str, list] = {}
    for s in finished:
        by_name.setdefault(s.name, []).append(s)
    (request,) = by_name["polymodal.request"]
    (planning,) = by_name["polymodal.plan"]
    steps = {s.attributes["tool"]: s for s in by_name["polymodal.step"]}
    llm = {s.attributes["llm.model"]: s for s in by_name["polymodal.llm"]}

    assert request.parent is None
    assert planning.parent.span_id == request.context.span_id
    assert {s.parent.span_id for s in steps.values()} == {request.context.span_id}
    assert llm["step-llm"].parent.span_id == steps["summarise"].context.span_id  # the LLM call inside the step
    assert llm["answer-llm"].parent.span_id == request.context.span_id  # the combined answer
    assert {s.context.trace_id for s in finished} == {request.context.trace_id}

    assert planning.attributes["plan.steps"] == 2
    assert steps["edge_query"].attributes["device.id"] == "garden-camera"
    assert steps["summarise"].attributes["step.ok"] is True and steps["summarise"].attributes["step.seconds"] >= 0
    assert (
        llm["step-llm"].attributes["llm.completion_tokens"] > 0 and llm["step-llm"].attributes["llm.prompt_tokens"] > 0
    )
    assert request.attributes["timing.total_s"] == result.timings["total"]
    assert request.attributes["plan.steps"] == 2 and request.attributes["request.ok"] is True
    for s in finished:
        assert s.start_time <= s.end_time


def test_a_stream_abandoned_early_still_ends_its_request_span(spans):
    events = fake_agent().stream("what does the garden camera see?")
    next(events)  # the plan
    events.close()
    assert [s.name for s in spans.get_finished_spans()][-1] == "polymodal.request"


def test_without_opentelemetry_a_run_works_and_records_nothing():
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # as if the otel extra were not installed
        "from orchestrator.testing import fake_agent\n"
        "r = fake_agent().run('what does the garden camera see?')\n"
        "assert r.ok and 'garden-camera' in r.answer, r.answer\n"
        "from polymodal import tracing; assert tracing._tracer() is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
