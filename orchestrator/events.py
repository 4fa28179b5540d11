"""Typed records of a run: step results, the final `AgentResult`, and the events streamed on the way.

for event in agent.stream("..."):
    PlanMade -> StepStarted -> StepProgress* -> StepFinished -> AnswerToken* -> Done
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.plan import Plan
from tools.base import read_result

__all__ = [
    "StepResult",
    "AgentResult",
    "PlanMade",
    "StepStarted",
    "StepProgress",
    "StepFinished",
    "AnswerToken",
    "Done",
    "Event",
]


@dataclass
class StepResult:
    """One step's outcome. A failed step is an observation (`ok=False`, `error`), not an exception."""

    step_id: int
    tool: str
    ok: bool
    args: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    error: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        """One paragraph about the result, for the combined answer."""
        if not self.ok and self.value is None:
            return f"{self.tool} failed: {self.error}"
        return read_result(self.value).summary

    @property
    def citations(self) -> list[Any]:
        return read_result(self.value).citations

    @property
    def artifacts(self) -> list[str]:
        return read_result(self.value).artifacts


@dataclass
class AgentResult:
    answer: str
    plan: Plan
    steps: list[StepResult] = field(default_factory=list)
    citations: list[Any] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # plan, execute, answer, total (seconds)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok]


@dataclass
class PlanMade:
    plan: Plan
    kind: str = "plan"


@dataclass
class StepStarted:
    step_id: int
    tool: str
    args: dict[str, Any]
    kind: str = "step_started"


@dataclass
class StepProgress:
    step_id: int
    fraction: float
    message: str = ""
    kind: str = "step_progress"


@dataclass
class StepFinished:
    result: StepResult
    kind: str = "step_finished"


@dataclass
class AnswerToken:
    text: str
    kind: str = "token"


@dataclass
class Done:
    result: AgentResult
    kind: str = "done"


Event = PlanMade | StepStarted | StepProgress | StepFinished | AnswerToken | Done
