"""The DAG executor: parallel steps, references, failures as observations, timeouts, events."""

from __future__ import annotations

import threading

from orchestrator.events import StepFinished, StepProgress, StepStarted
from orchestrator.executor import PlanExecutor
from orchestrator.plan import Plan, PlanStep
from orchestrator.testing import BrokenGenerateTool, fake_tools
from tools.base import FunctionTool, ToolContext
from tools.testing import SlowFakeTool


def tools(*extra):
    return {t.name: t for t in [*fake_tools(), *extra]}


def test_independent_steps_run_in_parallel():
    barrier = threading.Barrier(2, timeout=10)

    def meet(tag: str) -> str:
        """Waits until both steps are running at the same time."""
        barrier.wait()  # raises BrokenBarrierError (a failed step) if the steps ran one after another
        return tag

    plan = Plan([PlanStep(1, "meet", {"tag": "a"}), PlanStep(2, "meet", {"tag": "b"})])
    results = PlanExecutor(tools(FunctionTool(meet))).run(plan)
    assert sorted(r.value for r in results) == ["a", "b"] and all(r.ok for r in results)


def test_dependent_step_gets_the_referenced_output():
    plan = Plan(
        [
            PlanStep(1, "image_search", {"query": "cat", "k": 2}),
            PlanStep(2, "generate_image", {"prompt": "like $1.images[0].path"}, [1]),
        ]
    )
    results = {r.step_id: r for r in PlanExecutor(tools()).run(plan)}
    assert results[2].args["prompt"] == "like /photos/cat-0.jpg"
    assert results[2].value.prompt == "like /photos/cat-0.jpg"


def test_failing_step_is_an_observation_and_its_dependents_are_skipped():
    plan = Plan(
        [
            PlanStep(1, "generate_image", {"prompt": "fox"}),
            PlanStep(2, "image_search", {"query": "$1.images[0]"}, [1]),
            PlanStep(3, "rag_answer", {"question": "what is a fox?"}),
        ]
    )
    results = {r.step_id: r for r in PlanExecutor(tools(BrokenGenerateTool())).run(plan)}
    assert not results[1].ok and "no diffusion weights" in results[1].error
    assert not results[2].ok and "skipped because step 1 failed" in results[2].error
    assert results[3].ok


def test_programming_error_in_a_tool_does_not_stop_other_steps():
    def boom(x: int) -> int:
        """Always fails."""
        return 1 // 0

    plan = Plan([PlanStep(1, "boom", {"x": 1}), PlanStep(2, "rag_answer", {"question": "q"})])
    results = {r.step_id: r for r in PlanExecutor(tools(FunctionTool(boom))).run(plan)}
    assert "ZeroDivisionError" in results[1].error and results[2].ok


def test_step_timeout_cancels_the_tool_and_the_plan_finishes():
    stopped = threading.Event()

    def slow(x: int, *, context: ToolContext | None = None) -> int:
        """Runs until cancelled."""
        context.cancel.wait(30)
        stopped.set()
        return x

    plan = Plan([PlanStep(1, "slow", {"x": 1}), PlanStep(2, "rag_answer", {"question": "q"})])
    results = {r.step_id: r for r in PlanExecutor(tools(FunctionTool(slow)), timeouts={"slow": 0.2}).run(plan)}
    assert not results[1].ok and results[1].error == "timed out after 0.2 s"
    assert results[2].ok
    assert stopped.wait(5)  # the tool saw its cancel flag


def test_events_come_in_order_with_progress():
    plan = Plan([PlanStep(1, "generate_image", {"prompt": "fox"})])
    events = list(PlanExecutor(tools()).stream(plan))
    assert isinstance(events[0], StepStarted) and isinstance(events[-1], StepFinished)
    progress = [e for e in events if isinstance(e, StepProgress)]
    assert [p.fraction for p in progress] == [1 / 3, 2 / 3, 1.0] and progress[0].message == "step 1/3"


def test_cancel_stops_running_and_pending_steps():
    cancel = threading.Event()

    def wait(x: int, *, context: ToolContext | None = None) -> int:
        """Waits for cancellation."""
        cancel.set()
        context.cancel.wait(30)
        return x

    plan = Plan([PlanStep(1, "wait", {"x": 1}), PlanStep(2, "rag_answer", {"question": "$1"}, [1])])
    results = {r.step_id: r for r in PlanExecutor(tools(FunctionTool(wait))).run(plan, cancel=cancel)}
    assert results[1].error == "cancelled" and results[2].error == "cancelled"


def test_max_parallel_one_still_runs_everything():
    plan = Plan([PlanStep(i, "rag_answer", {"question": f"q{i}"}) for i in range(1, 5)])
    results = PlanExecutor(tools(), max_parallel=1).run(plan)
    assert sorted(r.step_id for r in results) == [1, 2, 3, 4] and all(r.ok for r in results)


def test_a_timed_out_step_frees_its_slot_at_once_and_stops_at_its_next_check():
    tool = SlowFakeTool(unit_s=30)  # a unit ends when the test opens the gate
    plan = Plan([PlanStep(1, tool.name, {"units": 3})])
    [res] = PlanExecutor({tool.name: tool}, step_timeout_s=0.2).run(plan)
    assert not res.ok and res.error == "timed out after 0.2 s"  # one line in the plan's results
    first = tool.calls[0]
    assert first.units_done == 0 and not first.finished.is_set()  # still inside its first unit
    # max_concurrency is 1: a second call runs although the first has not reached its next check
    second = threading.Thread(target=lambda: tool({"units": 0}), daemon=True)
    second.start()
    second.join(5)
    assert not second.is_alive() and len(tool.calls) == 2 and not first.finished.is_set()
    tool.gate.set()  # the first call's unit ends: it stops at the next check, with no further unit
    assert first.finished.wait(5) and first.saw_cancel and first.units_done == 1
    third = tool({"units": 2})  # the slot was given back once, not twice: still one run at a time
    assert third.units_done == 2 and tool._slots._value == 1
