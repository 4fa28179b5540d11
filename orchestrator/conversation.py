"""Multi-turn conversations: each holds its own turns (never shared), resolves follow-ups against
them, and saves/restores as JSON (atomic write, no pickle).

    chat = agent.conversation()
    chat.run("draw a lighthouse at dusk"); chat.run("make it bluer")
    chat.save("chat.json"); again = agent.load_conversation("chat.json")
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from polymodal.errors import InputError

if TYPE_CHECKING:
    from orchestrator.agent import Agent
    from orchestrator.events import AgentResult, Event

__all__ = ["Turn", "Conversation"]

FORMAT = "polymodal.conversation/1"


@dataclass
class Turn:
    request: str
    answer: str
    image: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)  # tool, args, ok, error, summary
    citations: list[Any] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    @classmethod
    def from_result(cls, request: str, image: str | None, result: "AgentResult") -> "Turn":
        from tools.base import to_plain

        steps = [
            {"tool": s.tool, "args": to_plain(s.args), "ok": s.ok, "error": s.error, "summary": s.summary()[:1000]}
            for s in result.steps
        ]
        return cls(
            request,
            result.answer,
            image,
            result.plan.to_dict(),
            steps,
            to_plain(result.citations),
            list(result.artifacts),
        )


class Conversation:
    def __init__(self, agent: "Agent", id: str | None = None, turns: list[Turn] | None = None) -> None:
        self.agent = agent
        self.id = id or uuid.uuid4().hex[:12]
        self.turns: list[Turn] = list(turns or [])
        self._lock = threading.Lock()  # one turn at a time within a conversation

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    def history(self, max_turns: int = 3) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for t in self.turns[-max_turns:]:
            out += [{"role": "user", "content": t.request}, {"role": "assistant", "content": t.answer}]
        return out

    def stream(self, text: str, image: str | None = None, cancel: threading.Event | None = None) -> Iterator["Event"]:
        from orchestrator.events import Done

        with self._lock:
            for event in self.agent.stream(text, image=image, conversation=self, cancel=cancel):
                if isinstance(event, Done):
                    self.turns.append(Turn.from_result(text, image, event.result))
                yield event

    def run(self, text: str, image: str | None = None, cancel: threading.Event | None = None) -> "AgentResult":
        from orchestrator.events import Done

        done = [e for e in self.stream(text, image, cancel) if isinstance(e, Done)]
        return done[-1].result

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from tools.base import to_plain

        return {"format": FORMAT, "id": self.id, "turns": [to_plain(t) for t in self.turns]}

    @classmethod
    def from_dict(cls, agent: "Agent", data: dict[str, Any]) -> "Conversation":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"not a saved polymodal conversation (expected format {FORMAT})")
        try:
            turns = [Turn(**t) for t in data.get("turns", [])]
        except TypeError as exc:
            raise InputError(f"saved conversation has a malformed turn: {exc}") from None
        return cls(agent, id=str(data.get("id") or ""), turns=turns)

    def save(self, path: str | Path) -> Path:
        from polymodal.fsutil import atomic_write_json

        return atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, agent: "Agent", path: str | Path) -> "Conversation":
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"conversation file not found: {p}") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read conversation {p}: {exc}") from None
        return cls.from_dict(agent, data)
