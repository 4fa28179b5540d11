"""The fast router: decides clear single-tool (or zero-step) requests in milliseconds.

Order: an attached image, explicit cues (`orchestrator.cues`), then embedding similarity of the
request against each tool's description and example requests. Anything compound or unclear is
left to the LLM planner (`Route.tool is None and not Route.zero_step`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from orchestrator import cues
from tools.base import Tool, image_arg, main_text_arg

__all__ = ["Route", "FastRouter", "fill_args"]


@dataclass
class Route:
    tool: str | None = None  # the decided single tool
    args: dict[str, Any] | None = None  # its arguments, when the router could fill them
    zero_step: bool = False
    compound: bool = False
    candidates: list[str] = field(default_factory=list)  # tools the cues named
    excluded: list[str] = field(default_factory=list)  # tools the user ruled out ("not a photo search")
    scores: dict[str, float] = field(default_factory=dict)  # embedding similarity per tool ("" = chat)
    reason: str = ""

    @property
    def decided(self) -> bool:
        return self.zero_step or self.tool is not None


class FastRouter:
    """`route(text, image)` -> `Route`. `embedder` is any `indexes.embedders.Embedder` or None (cues only)."""

    def __init__(
        self, tools: Mapping[str, Any], embedder: Any = None, threshold: float = 0.45, margin: float = 0.06
    ) -> None:
        self.tools = tools
        self.embedder = embedder
        self.threshold = threshold
        self.margin = margin
        self._bank: tuple[list[str], Any] | None = None  # (label per row, matrix)
        self._lock = threading.Lock()

    # -- public ----------------------------------------------------------------------------
    def route(self, text: str, image: str | None = None) -> Route:
        text = (text or "").strip()
        reading = cues.read_cues(text, self.tools) if text else cues.CueReading()
        found = set(reading.strong)
        excluded = sorted(reading.negated - found)
        takes_image = self.declaring("attachment")
        if image and takes_image and not found - {takes_image} and takes_image not in reading.negated:
            return self._decide(takes_image, text, image, "attached image")
        if not text:
            return Route(reason="empty request")
        answers = self.declaring("questions")
        if cues.about_conversation(text) and not found - {answers}:
            return Route(zero_step=True, reason="about this conversation or the assistant")
        parts = cues.clauses(text)
        uncovered = []
        if len(parts) > 1:
            for part in parts:
                claimed = self.claims(part)
                if not claimed and answers and cues.is_question(part) and not cues.is_chat(part):
                    claimed = {answers}  # "What is edge AI? Also show me a robot photo": a knowledge-base step
                found |= claimed
                if not claimed and not cues.is_chat(part) and len(part) > 3:
                    uncovered.append(part)
        if len(found) > 1 and len(cues.fine_clauses(text)) == 1:
            # one clause, several tools' cues ("画一张温室的插画"): the model reads it, not the first cue found
            return Route(candidates=sorted(found), excluded=excluded, reason="conflicting cues in one clause")
        if len(found) > 1:
            return Route(compound=True, candidates=sorted(found), excluded=excluded, reason="cues of several tools")
        if uncovered:
            # "make an image of a lighthouse, then a second one of it": a clause no cue claims; the model reads it
            return Route(candidates=sorted(found), excluded=excluded, reason="a clause no cue claims")
        if len(found) == 1:
            tool = next(iter(found))
            if self._repeated(tool, text):
                return Route(compound=True, candidates=[tool], reason=f"{tool} asked more than once")
            return self._decide(tool, text, image, "cue")
        if cues.is_chat(text):
            return Route(zero_step=True, reason="small talk")
        if answers and cues.is_definition(text) and len(parts) <= 1 and not reading.negated:
            return self._decide(answers, text, image, "definition question")  # "what is a humidity sensor?"
        scores = self.similarity(text)
        best, confident = self._best(scores)
        if reading.weak or reading.negated:
            # "draw a red fox" reads like the tool's examples, "draw a comparison" does not: a hint the
            # embedding confirms decides; otherwise ("not a photo search", "greenhouse gas") the model decides
            if confident and best in reading.hinted and best not in reading.negated and len(parts) <= 1:
                route = self._decide(best, text, image, f"hint confirmed by similarity {scores[best]:.2f}")
                route.scores = scores
                return route
            return Route(
                candidates=sorted(reading.weak),
                excluded=excluded,
                reason="only hints: " + ", ".join(sorted(reading.weak | {f"not {n}" for n in reading.negated})),
            )
        if confident:
            if best == "":
                return Route(zero_step=True, scores=scores, reason=f"similar to small talk ({scores[best]:.2f})")
            route = self._decide(best, text, image, f"similarity {scores[best]:.2f}")
            route.scores = scores
            return route
        if answers and (cues.is_definition(text) or cues.is_question(text)) and len(parts) <= 1:
            route = self._decide(answers, text, image, "a question with no tool cue")
            route.scores = scores
            return route
        return Route(scores=scores, reason="unclear")

    def similarity(self, text: str) -> dict[str, float]:
        """Best cosine similarity of `text` to each tool's description/examples ('' = small talk)."""
        if self.embedder is None:
            return {}
        labels, matrix = self._examples()
        q = self.embedder.embed_query(text)
        sims = matrix @ q
        out: dict[str, float] = {}
        for label, s in zip(labels, sims.tolist()):
            if s > out.get(label, -1.0):
                out[label] = float(s)
        return out

    def warm_up(self) -> None:
        if self.embedder is not None:
            self._examples()

    def claims(self, clause: str) -> set[str]:
        """The tools that claim one clause by themselves: strong cues, or the one tool a weak cue
        hints at when the embedding agrees ("draw a robot", not "draw a comparison")."""
        reading = cues.read_cues(clause, self.tools)
        if reading.strong:
            return set(reading.strong)
        if reading.hinted and not reading.negated:
            best, confident = self._best(self.similarity(clause))
            if confident and best in reading.hinted:
                return {best}
        return set()

    # -- internals -------------------------------------------------------------------------
    def _best(self, scores: dict[str, float]) -> tuple[str | None, bool]:
        """The most similar tool ("" = small talk) and whether it leads clearly (threshold and margin)."""
        if not scores:
            return None, False
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        (best, s1), s2 = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        return best, s1 >= self.threshold and s1 - s2 >= self.margin

    def declaring(self, flag: str) -> str | None:
        """The first registered tool whose cues declare `flag` (attachment, questions)."""
        return next((name for name, tool in self.tools.items() if getattr(tool.cues, flag)), None)

    def _decide(self, tool: str, text: str, image: str | None, reason: str) -> Route:
        return Route(tool=tool, args=fill_args(self.tools[tool], text, image), candidates=[tool], reason=reason)

    def _repeated(self, tool: str, text: str) -> bool:
        # two separate clauses each asking the same tool ("draw a cat, then draw a dog"): a 2-step plan
        hits = [p for p in cues.fine_clauses(text) if tool in self.claims(p)]
        return self.tools[tool].cues.repeatable and len(hits) > 1

    def _examples(self) -> tuple[list[str], Any]:
        with self._lock:
            if self._bank is None:
                labels: list[str] = []
                texts: list[str] = []
                for name, tool in self.tools.items():
                    rows = [tool.description, *tool.examples]
                    labels += [name] * len(rows)
                    texts += rows
                labels += [""] * len(cues.CHAT_EXAMPLES)
                texts += cues.CHAT_EXAMPLES
                self._bank = (labels, self.embedder.embed_documents(texts))
            return self._bank


HOOK_BUDGET_S = 0.5  # a tool's route_args may connect somewhere on first use; the router does not wait longer


def _within(fn: Any, args: tuple, seconds: float) -> Any:
    """fn(*args), or None if it raises or takes longer than `seconds` (it then finishes in the
    background, so e.g. a device connection is ready for the next request)."""
    box: list[Any] = []

    def call() -> None:
        try:
            box.append(fn(*args))
        except Exception:  # noqa: BLE001 - a hook that cannot decide leaves it to the LLM
            box.append(None)

    worker = threading.Thread(target=call, daemon=True, name="route-args")
    worker.start()
    worker.join(seconds)
    return box[0] if box else None


def fill_args(tool: Tool, text: str, image: str | None = None) -> dict[str, Any] | None:
    """Arguments for a single-tool request, or None when the LLM has to fill them.

    A tool may fill them itself (`Tool.route_args`: edge_query picks the device); otherwise the
    request (without its command words) goes to the main text parameter and an attached image to
    the image parameter.
    """
    if type(tool).route_args is not Tool.route_args:
        got = _within(tool.route_args, (text, image), HOOK_BUDGET_S)
        if got is not None:
            return dict(got)
    schema = tool.input_schema
    args: dict[str, Any] = {}
    main = main_text_arg(tool)
    if main and text:
        args[main] = cues.strip_command(tool, text)
    img = image_arg(tool)
    if image and img:
        args[img] = str(image)
    if image and not img and not text:
        return None
    missing = [r for r in schema.get("required", []) if r not in args]
    return None if missing else args
