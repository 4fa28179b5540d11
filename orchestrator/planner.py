"""Two-stage planning: the fast router, clause decomposition, then the LLM under a JSON schema.

1. `FastRouter` decides clear single-tool and zero-step requests.
2. A compound request whose every clause the cues name one tool ("总结一下…，再找一张猫的照片")
   becomes one step per clause; a clause pointing back ("draw it", "根据它") depends on the one before.
3. Everything else goes to the LLM with the tool list and few-shot examples; its plan is
   validated, repaired, or re-asked once with the error; a plan that still fails is a `PlanError`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Callable, Mapping

from orchestrator import cues
from orchestrator.plan import Plan, PlanStep, plan_from_json, validate_plan
from orchestrator.prompts import plan_messages, plan_schema
from orchestrator.router import FastRouter, Route, fill_args
from polymodal.errors import ModelUnavailable, PlanError, PlanRefused, PolymodalError
from tools.base import image_arg, main_text_arg

__all__ = ["Planner"]

log = logging.getLogger(__name__)

_POINTS_BACK = re.compile(
    r"\b(it|its|them|that|those|this one|these|the result|the answer|the same|based on|using|similar|matching|"
    r"like (it|that|the one)|the (best|top|first|closest) (match|result|one|hit))\b|"
    r"(它|它们|这个|那个|这张|那张|这些|上面|结果|根据|按照|基于|据此|同样|类似|相似|照着|以此|到的|出的|生成的|"
    r"^(如果|要是|若是|假如))",
    re.I,
)


class Planner:
    def __init__(
        self,
        tools: Mapping[str, Any],
        router: FastRouter | None = None,
        llm: Callable[[], Any] | None = None,
        use_router: bool = True,
        max_tokens: int = 320,
    ) -> None:
        self.tools = tools
        self.router = router or FastRouter(tools)
        self._llm = llm  # a callable returning the chat model (loaded on first need)
        self.use_router = use_router
        self.max_tokens = max_tokens
        self.last_timing: dict[str, float] = {}

    def plan(self, text: str, image: str | None = None, history: list[dict[str, str]] | None = None) -> Plan:
        t0 = time.perf_counter()
        route = self.router.route(text, image) if self.use_router else Route(reason="router off")
        self.last_timing = {"route": time.perf_counter() - t0}
        if history and route.reason not in ("cue", "attached image") and _POINTS_BACK.search(text):
            route = Route(reason="refers to the conversation")  # "do the same again": needs the history
        if route.zero_step:
            return Plan([], source="router", note=route.reason)
        if route.tool and route.args is not None:
            plan = Plan([PlanStep(1, route.tool, route.args)], source="router", note=route.reason)
            return validate_plan(plan, self.tools)[0]
        if route.compound:
            plan = self._decompose(text, image, route)
            if plan is not None:
                return plan
        t1 = time.perf_counter()
        try:
            if route.tool:  # the router knows the tool but not its arguments: the LLM fills one step
                return self.plan_with_llm(text, image, history, hint=route, only=route.tool)
            return self.plan_with_llm(text, image, history, hint=route)
        finally:
            self.last_timing["llm"] = time.perf_counter() - t1

    # -- stage 2: clause decomposition ------------------------------------------------------
    def _decompose(self, text: str, image: str | None, route: Route) -> Plan | None:
        steps: list[PlanStep] = []
        parts = cues.clauses(text)
        if len(parts) < max(2, len(route.candidates)):
            parts = cues.fine_clauses(text)
        answers = self.router.declaring("questions")
        for part in parts:
            found = self.router.claims(part)
            if not found and cues.is_question(part) and not cues.is_chat(part) and answers:
                found = {answers}
            if not found:
                if cues.is_chat(part) or len(part) <= 3:
                    continue
                return None  # a clause nobody claims: let the LLM read the whole request
            if len(found) > 1 and steps and _POINTS_BACK.search(part):
                found.discard(steps[-1].tool)  # "根据总结画一张插画": the summary is the previous step
            if len(found) != 1:
                return None  # a clause cued for several tools: the LLM reads the whole request
            tool = found.pop()
            args = fill_args(self.tools[tool], part, image if image_arg(self.tools[tool]) else None)
            if args is None:
                return None
            step = PlanStep(len(steps) + 1, tool, args)
            if steps and _POINTS_BACK.search(part):
                ref = _reference_for(steps[-1], self.tools[steps[-1].tool], self.tools[tool], args)
                if ref is None:
                    return None
                step.args.update(ref)
                step.depends_on = [steps[-1].id]
            steps.append(step)
        if len(steps) < 2:
            return None
        try:
            return validate_plan(
                Plan(steps, source="router", note="clauses: " + ", ".join(route.candidates)), self.tools
            )[0]
        except PlanError:
            return None

    # -- stage 3: the LLM -------------------------------------------------------------------
    def plan_with_llm(
        self,
        text: str,
        image: str | None = None,
        history: list[dict[str, str]] | None = None,
        hint: Route | None = None,
        only: str | None = None,
    ) -> Plan:
        if self._llm is None:
            return self._fallback(hint, "no language model is configured")
        try:
            llm = self._llm()
        except ModelUnavailable as exc:
            return self._fallback(hint, str(exc))
        messages = plan_messages(self.tools, text, image, history, avoid=hint.excluded if hint else ())
        allowed = {n: t for n, t in self.tools.items() if not hint or n not in hint.excluded}
        if only:
            schema = plan_schema({only: self.tools[only]}, min_steps=1, max_steps=1)
        else:
            schema = plan_schema(allowed)  # a tool the user ruled out cannot be planned
        error = raw = ""
        refused = False
        for attempt in range(2):
            if error:
                messages = messages + [
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": f"That plan is invalid: {error}. Reply with a corrected plan."},
                ]
            raw = llm.generate(messages, json_schema=schema, max_tokens=self.max_tokens, temperature=0.0)
            try:
                plan = plan_from_json(_loads(raw), source="llm")
                plan, fixes = validate_plan(plan, self.tools)
                fixes += _link_pointing_back(plan, text, self.tools)
                plan.note = "; ".join(fixes) or ("re-asked once" if attempt else "")
                return _attach_image(plan, image, self.tools)
            except PolymodalError as exc:
                error, refused = str(exc), isinstance(exc, PlanRefused)
                log.info("plan attempt %d rejected: %s", attempt + 1, error)
        answers = next((n for n, t in allowed.items() if t.cues.questions), None)
        if refused and answers:  # a tool said the request is not for it ("no device called X is registered")
            args = fill_args(self.tools[answers], text, None)
            if args is not None:
                return Plan([PlanStep(1, answers, args)], source="llm", note=f"after a refused plan: {error}")
        raise PlanError(
            f"I could not make a valid plan for this request ({error}); try rephrasing it as separate requests"
        )

    def _fallback(self, hint: Route | None, why: str) -> Plan:
        """No LLM: use the router's best single guess rather than fail, and say so in the note."""
        if hint and hint.scores:
            best = max((kv for kv in hint.scores.items() if kv[0]), key=lambda kv: kv[1], default=None)
            if best:
                args = fill_args(self.tools[best[0]], "", None)
                if args is not None:
                    return Plan([PlanStep(1, best[0], args)], source="router", note=f"best guess ({why})")
        raise PlanError(f"this request needs the planning model, which is unavailable: {why}")


_PRONOUN = re.compile(r"\b(it|them|that|this one)\b|它们|它|这个|那个", re.I)


def _reference_for(prev: PlanStep, prev_tool: Any, tool: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """What the dependent step takes from the previous one: its file for an image argument, its
    answer for a text argument, else its subject in place of the pronoun ("paint it" -> "paint a bridge")."""
    fields = prev_tool.output_fields()
    img = image_arg(tool)
    if img and "artifacts[]" in fields:
        return {img: f"${prev.id}.artifacts[0]"}  # the file the previous step found or made
    main = main_text_arg(tool)
    if main is None:
        return None
    text = str(args.get(main, ""))
    if "answer" in fields:
        return {main: f"{text} (${prev.id}.answer)".strip()}
    subject = prev.args.get(main_text_arg(prev_tool) or "", "")
    subject = subject if isinstance(subject, str) else ""
    if subject and _PRONOUN.search(text):
        return {main: _PRONOUN.sub(subject, text, count=1)}
    return {main: f"{text} (${prev.id}.summary)".strip()} if "summary" in fields else {main: text}


def _link_pointing_back(plan: Plan, text: str, tools: Mapping[str, Any]) -> list[str]:
    """Two unlinked steps for a request whose later clause points back ("find a photo of a bridge,
    then paint it"): the small model often writes the subject ("a painting of a bridge") instead
    of a "$1" reference. Link them as clause decomposition does (`_reference_for`)."""
    if len(plan.steps) != 2 or plan.edges():
        return []
    later = " ".join(cues.clauses(text)[1:])
    if not later or not _POINTS_BACK.search(later):
        return []
    first, second = plan.steps
    ref = _reference_for(first, tools[first.tool], tools[second.tool], dict(second.args))
    if ref is None:
        return []
    second.args.update(ref)
    second.depends_on = [first.id]
    return [f"step {second.id} linked to step {first.id}: the request points back"]


def _attach_image(plan: Plan, image: str | None, tools: Mapping[str, Any]) -> Plan:
    """An attached image the model did not place goes to the first step that takes an image."""
    if not image or any(image in json.dumps(s.args, ensure_ascii=False) for s in plan.steps):
        return plan
    for step in plan.steps:
        img = image_arg(tools[step.tool])
        if img and not step.args.get(img):
            step.args[img] = image
            break
    return plan


def _loads(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("```"):
        raw = raw.strip("`").removeprefix("json").strip()
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        m = re.search(r"\{.*\}", raw, re.S)
        if m:
            try:
                return json.loads(m.group(0))
            except json.JSONDecodeError:
                pass
    raise PlanError("the planner's reply was not valid JSON")
