"""The orchestrator: plans a request (fast router, then the LLM), runs the plan as a DAG of tool
calls, and answers with citations and artifacts; multi-turn conversations on top.

    from orchestrator import Agent
    result = Agent.from_config().run("总结一下知识库里关于边缘AI的要点，再找一张猫的照片")

Importing this package is light: models load on first use.
"""

from orchestrator.agent import Agent
from orchestrator.conversation import Conversation, Turn
from orchestrator.events import (
    AgentResult,
    AnswerToken,
    Done,
    Event,
    PlanMade,
    StepFinished,
    StepProgress,
    StepResult,
    StepStarted,
)
from orchestrator.executor import PlanExecutor
from orchestrator.models import ModelManager
from orchestrator.plan import Plan, PlanStep, validate_plan
from orchestrator.planner import Planner
from orchestrator.registry import ToolProblem, default_tools
from orchestrator.router import FastRouter, Route

__all__ = [
    "Agent",
    "AgentResult",
    "AnswerToken",
    "Conversation",
    "default_tools",
    "Done",
    "Event",
    "FastRouter",
    "ModelManager",
    "Plan",
    "PlanExecutor",
    "PlanMade",
    "Planner",
    "PlanStep",
    "Route",
    "StepFinished",
    "StepProgress",
    "StepResult",
    "StepStarted",
    "ToolProblem",
    "Turn",
    "validate_plan",
]
