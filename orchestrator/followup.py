"""Follow-ups that refer to the previous turn, resolved without the LLM:

- "where did that come from?" / "出处是哪里？"  -> the previous answer's citations
- "make it bluer" / "让它更蓝一点"              -> the previous generation, prompt changed, same seed
- "and the greenhouse?" / "那温室呢？"          -> the previous single-step request, its subject replaced
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from indexes.readers.base import describe_location
from orchestrator.plan import Plan, PlanStep

__all__ = ["resolve_followup", "describe_citations"]

_SOURCES = re.compile(
    r"\b(where did (that|this|it|you get (that|this|it)) (come from|from)|what('s| is| are) (the|your) sources?|"
    r"sources?\??$|cite|citations?|show (me )?(the )?sources?)\b|"
    r"(出处|来源|哪里来的|从哪来|从哪里来|引用了什么|依据是什么)",
    re.I,
)
_MODIFY = re.compile(
    r"^\s*(now |but |can you |please )?(make (it|them|the (image|picture))|change it to|turn it)\s+(?P<mod>.+?)[.!?]*$",
    re.I,
)
_MODIFY_ZH = re.compile(
    r"^\s*(再|请)?(让它|把它|让图片|把图片|把画面|让画面)?(变得|改得|改成|弄得|换成|变成|画得)(?P<mod>.+?)[。！？!?]*$"
)
_AND = re.compile(r"^\s*(and|what about|how about|and what about|same for)\s+(?P<subject>.+?)\s*[?？.!]*$", re.I)
_AND_ZH = re.compile(r"^\s*(那|还有|那么)?(?P<subject>[^，。？?]{1,20}?)(呢|怎么样呢)\s*[？?。]*$")
_ARTICLE = re.compile(r"^(the|my|our|a|an)\s+", re.I)


def describe_citations(citations: list[Any]) -> str:
    if not citations:
        return "The previous answer did not cite any source."
    lines = ["The previous answer came from:"]
    for i, c in enumerate(citations, start=1):
        c = c if isinstance(c, Mapping) else getattr(c, "__dict__", {"text": str(c)})
        num = c.get("number", i)
        src = c.get("source") or c.get("path") or c.get("doc_id") or "?"
        span = f" (chars {c['start']}-{c['end']})" if c.get("start") is not None and c.get("end") is not None else ""
        loc = describe_location(c.get("metadata") or {})
        span = f" {loc}{span}" if loc else span
        quote = str(c.get("text", "")).strip().replace("\n", " ")
        lines.append(f"[{num}] {src}{span}" + (f': "{quote[:200]}"' if quote else ""))
    return "\n".join(lines)


_SOURCES_NOTE = "citations of the previous answer"


# "where did that come from?", "sources?", "出处是哪里？" point back at the previous answer; "How should I cite a
# dataset?" and "水污染的主要来源有哪些？" are questions of their own (they have a subject besides the sources).
_BACK = re.compile(
    r"\b(that|this|it|those|these|your (last |previous )?(answer|reply))\b|(这|那|它|上面|刚才|你的回答|答案)", re.I
)
_SOURCE_WORDS = re.compile(
    r"\b(where|did|does|do|you|get|come|from|what|is|are|the|your|sources?|cite|cited|citations?|show|me|please|of|"
    r"for|s)\b|出处|来源|哪里来的|从哪来|从哪里来|引用了什么|依据是什么|是|在|哪里|什么|呢|吗|的|请|给我|看看|一下",
    re.I,
)


def _points_back(text: str) -> bool:
    if _BACK.search(text):
        return True
    rest = _SOURCE_WORDS.sub(" ", text)
    return not re.search(r"[A-Za-z]{2,}|[\u4e00-\u9fff]", rest)  # nothing left but the asking itself


def resolve_followup(text: str, turns: list[Any], tools: Mapping[str, Any]) -> tuple[Plan | None, str]:
    """(plan, direct answer) for a follow-up of the last of `turns`, or (None, "") if it is not one."""
    if not turns:
        return None, ""
    last = turns[-1]
    text = text.strip()
    if _SOURCES.search(text) and _points_back(text):
        # asking twice ("where from?" then "出处?") still means the last real answer
        answered = next((t for t in reversed(turns) if t.plan.get("note") != _SOURCES_NOTE), last)
        return Plan([], source="followup", note=_SOURCES_NOTE), describe_citations(answered.citations)
    steps = last.plan.get("steps", [])
    m = _MODIFY.match(text) or _MODIFY_ZH.match(text)
    if m:  # "make it bluer": the last step whose tool can refine its result ("refine_args")
        for step in reversed(last.steps):
            tool = tools.get(step.get("tool"))
            args = tool.refine_args(copy.deepcopy(step["args"]), m.group("mod")) if tool and step.get("ok") else None
            if args is not None:
                return Plan([PlanStep(1, tool.name, args)], source="followup", note="previous result, changed"), ""
    m = _AND.match(text) or _AND_ZH.match(text)
    if m and len(steps) == 1 and last.steps and steps[0]["tool"] in tools:
        subject = _ARTICLE.sub("", m.group("subject").strip())
        prev = last.steps[0]
        args = tools[prev["tool"]].followup_args(copy.deepcopy(prev["args"]), subject)
        if args is None:
            return None, ""  # e.g. a knowledge follow-up needs the planner (with history)
        return Plan([PlanStep(1, prev["tool"], args)], source="followup", note=f"previous request about {subject}"), ""
    return None, ""
