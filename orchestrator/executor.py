"""Runs a plan as a DAG: independent steps in parallel threads, dependents once their inputs exist.

Each step gets a `ToolContext` whose progress reports become `StepProgress` events and whose
`CancelToken` is cancelled on timeout or cancellation: the step's concurrency slot is free at once
and the tool stops at its next check (between retrievals, tokens, diffusion steps, device requests).
A failing, timed-out or skipped step becomes a `StepResult(ok=False)` observation; the other steps
still run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Iterator, Mapping

from orchestrator.events import AnswerToken, StepFinished, StepProgress, StepResult, StepStarted
from orchestrator.plan import Plan, PlanStep, resolve_references
from polymodal import tracing
from polymodal.cancel import CancelToken
from polymodal.errors import PolymodalError
from tools.base import read_result

__all__ = ["PlanExecutor"]

log = logging.getLogger(__name__)


class PlanExecutor:
    def __init__(
        self,
        tools: Mapping[str, Any],
        max_parallel: int = 4,
        step_timeout_s: float = 300.0,
        timeouts: Mapping[str, float] | None = None,
    ) -> None:
        self.tools = tools
        self.max_parallel = max(1, max_parallel)
        self.step_timeout_s = step_timeout_s
        self.timeouts = dict(timeouts or {})  # per tool name, e.g. {"generate_image": 600}

    def run(self, plan: Plan, cancel: threading.Event | None = None) -> list[StepResult]:
        return [e.result for e in self.stream(plan, cancel) if isinstance(e, StepFinished)]

    def stream(
        self,
        plan: Plan,
        cancel: threading.Event | None = None,
        stream_text: set[int] | None = None,
        trace_context: Any = None,
    ) -> Iterator[StepStarted | StepProgress | StepFinished | AnswerToken]:
        """Yield events while running `plan`; results come in `StepFinished` events, in finish order.

        Steps in `stream_text` whose tool offers `stream()` (text pieces, then the result) run
        through it and their pieces come out as `AnswerToken` events while the step runs. Each step
        is a `polymodal.step` span under `trace_context` (`polymodal.tracing`).
        """
        stream_text = stream_text or set()
        from tools.base import ToolContext, to_plain

        cancel = cancel or threading.Event()
        inbox: queue.Queue = queue.Queue()
        pending = {s.id: s for s in plan.steps}
        results: dict[int, StepResult] = {}
        plain: dict[int, Any] = {}
        running: dict[int, tuple[float, ToolContext]] = {}  # step id -> (deadline, context)

        while pending or running:
            for step in self._ready(pending, results, running):
                del pending[step.id]
                blocked = [d for d in step.depends_on if not results[d].ok]
                if blocked:
                    res = StepResult(
                        step.id, step.tool, False, dict(step.args), error=f"skipped because step {blocked[0]} failed"
                    )
                    results[step.id] = res
                    yield StepFinished(res)
                    continue
                try:
                    args = resolve_references(step.args, plain)
                except PolymodalError as exc:
                    res = StepResult(step.id, step.tool, False, dict(step.args), error=str(exc))
                    results[step.id] = res
                    yield StepFinished(res)
                    continue
                ctx = ToolContext(progress=_progress_to(inbox, step.id), cancel=CancelToken())
                running[step.id] = (time.monotonic() + self.timeouts.get(step.tool, self.step_timeout_s), ctx)
                yield StepStarted(step.id, step.tool, args)
                threading.Thread(
                    target=self._call,
                    args=(step, args, ctx, inbox, step.id in stream_text, trace_context),
                    daemon=True,
                    name=f"step-{step.id}-{step.tool}",
                ).start()
            if not running:
                continue
            wait = max(0.0, min(d for d, _ in running.values()) - time.monotonic())
            try:
                msg = inbox.get(timeout=min(wait, 0.1))  # wake often enough to notice a cancel
            except queue.Empty:
                msg = None
            now = time.monotonic()
            if msg is not None and msg[0] == "progress" and msg[1] in running:
                yield StepProgress(msg[1], msg[2], msg[3])
            elif msg is not None and msg[0] == "text" and msg[1] in running:
                yield AnswerToken(msg[2])
            elif msg is not None and msg[0] == "done" and msg[1] in running:
                res = msg[2]
                del running[res.step_id]
                results[res.step_id] = res
                if res.ok:
                    plain[res.step_id] = _plain_result(res.value, to_plain)
                yield StepFinished(res)
            for sid, (deadline, ctx) in list(running.items()):
                why = "cancelled" if cancel.is_set() else ("timed out" if now >= deadline else "")
                if why:
                    step = plan.step(sid)
                    limit = self.timeouts.get(step.tool, self.step_timeout_s)
                    err = f"timed out after {limit:g} s" if why == "timed out" else "cancelled"
                    ctx.cancel.cancel(err)  # frees the tool's slot now; the tool stops at its next check
                    del running[sid]
                    res = StepResult(sid, step.tool, False, dict(step.args), error=err, seconds=round(limit, 3))
                    results[sid] = res
                    yield StepFinished(res)
            if cancel.is_set():
                for sid, step in list(pending.items()):
                    del pending[sid]
                    res = StepResult(sid, step.tool, False, dict(step.args), error="cancelled")
                    results[sid] = res
                    yield StepFinished(res)

    def _ready(
        self, pending: dict[int, PlanStep], results: dict[int, StepResult], running: dict[int, Any]
    ) -> list[PlanStep]:
        free = self.max_parallel - len(running)
        ready = [s for s in pending.values() if all(d in results for d in s.depends_on)]
        # skipped steps need no thread: let them through regardless of the parallel limit
        skips = [s for s in ready if any(not results[d].ok for d in s.depends_on)]
        runs = [s for s in ready if s not in skips][: max(0, free)]
        return skips + runs

    def _call(
        self, step: PlanStep, args: dict[str, Any], ctx: Any, inbox: queue.Queue, text: bool = False, trace: Any = None
    ) -> None:
        with tracing.attached(trace), tracing.span("polymodal.step", **{"step.id": step.id, "tool": step.tool}) as sp:
            res = self._result(step, args, ctx, inbox, text)
            view = read_result(res.value)
            tracing.annotate(
                sp,
                {"step.ok": res.ok, "step.seconds": res.seconds, "step.error": res.error or None}
                | {f"provenance.{k}": v for k, v in view.provenance.items()}
                | {"device.id": view.provenance.get("device")},
            )
        inbox.put(("done", step.id, res))

    def _result(self, step: PlanStep, args: dict[str, Any], ctx: Any, inbox: queue.Queue, text: bool) -> StepResult:
        start = time.perf_counter()
        tool = self.tools.get(step.tool)
        try:
            if tool is None:
                raise PolymodalError(f"tool '{step.tool}' is not available")
            if text and tool.streams_text():
                value = tool.call_streaming(args, ctx, lambda piece: inbox.put(("text", step.id, piece)))
            else:
                value = tool(args, context=ctx)
            res = StepResult(step.id, step.tool, True, args, value=value)
            view = read_result(value)
            if not view.ok:  # e.g. an offline device: a result that says it failed
                res.ok = False
                res.error = view.error or "the tool reported a failure"
        except PolymodalError as exc:
            res = StepResult(step.id, step.tool, False, args, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken tool must not take the other steps down
            log.exception("step %s (%s) raised", step.id, step.tool)
            res = StepResult(step.id, step.tool, False, args, error=f"internal error: {type(exc).__name__}: {exc}")
        res.seconds = round(time.perf_counter() - start, 4)
        log.debug("step %s (%s): %s in %.3f s", step.id, step.tool, "ok" if res.ok else res.error, res.seconds)
        return res


def _plain_result(value: Any, to_plain: Any) -> Any:
    """The result as plain data for `$N.field` references, plus the contract's `artifacts` and
    `summary` (properties and methods that `to_plain` does not see), so "$1.artifacts[0]" and
    "$1.summary" work for every tool."""
    data = to_plain(value)
    if isinstance(data, dict):
        view = read_result(value)
        data.setdefault("artifacts", view.artifacts)
        data.setdefault("summary", view.summary)
    return data


def _progress_to(inbox: queue.Queue, step_id: int):
    def report(fraction: float, message: str = "") -> None:
        inbox.put(("progress", step_id, float(fraction), str(message)))

    return report
