"""The fast router's reading of a request, in English and Chinese: clauses, questions, small talk,
and which tools' declared cues (`tools.base.Cues`) claim it. Each tool declares its own strong cues
(an action on its object: "find a photo", "画一只"); this module knows no tool. Definition questions
("what is CLIP?", "什么是传感器") are knowledge questions even when they name a tool's object.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

__all__ = [
    "CHAT_CUES",
    "DEFINITION",
    "QUESTION",
    "CLAUSE_SPLIT",
    "CHAT_EXAMPLES",
    "strong_cues",
    "clauses",
    "fine_clauses",
    "primary_cue",
    "is_chat",
    "is_definition",
    "is_question",
    "strip_command",
]

_I = re.I

CHAT_CUES = [
    re.compile(
        r"^\s*(hi|hello|hey|thanks|thank you|thx|good (morning|afternoon|evening|night)|bye|goodbye|"
        r"ok|okay|cool|great|nice|awesome|lol)\b[\s!.,]*(there|again|so much|a lot)?[\s!.,]*$",
        _I,
    ),
    re.compile(r"\b(who are you|what can you do|what are you|your name|how are you|are you a (bot|robot|human))\b", _I),
    re.compile(
        r"\b(what did i (just )?(ask|say)|my (last|previous|first) (question|message)|what did you (just )?say|"
        r"repeat (that|your answer)|what were we talking about|summari[sz]e (our|this) (conversation|chat))\b",
        _I,
    ),
    re.compile(r"\bwhere did (that|this|it) come from\b|\bsources? (of|for) (that|this)\b", _I),
    re.compile(
        r"^\s*(你好|您好|嗨|哈喽|谢谢|多谢|感谢|再见|拜拜|早上好|晚上好|晚安|好的|嗯|好吧|不错)[\s!！。,，~]*(啊|呀|你)?[\s!！。,，~]*$"
    ),
    re.compile(r"(你是谁|你能做什么|你会什么|你叫什么|你有什么功能|你好吗)"),
    re.compile(
        r"(我刚才问|我上一个问题|我之前问|你刚才说|我们聊了什么|我们刚才聊|重复一下你的回答|刚才的出处|那是从哪来的|出处是哪里)"
    ),
]

DEFINITION = re.compile(
    r"^\s*(what is|what are|what's|whats|define|explain|what does \w+ mean|how does (a|an)\b|how do (a|an)?\b|"
    r"why (do|does|is|are)|describe how|tell me about|what kind of|what types? of)\s+(?!(the|my|our|this|that)\b)",
    _I,
)
_ZH_DEFINITION = re.compile(
    r"(什么是|是什么|是啥|介绍一下|介绍下|解释|原理|为什么|区别|有哪些|的作用|的优势|的意思|怎么工作|如何工作|的定义|"
    r"是怎么|是如何|怎样工作|有什么不同|发展历史|的发展)"
)
_IMPERATIVE = re.compile(
    r"^\s*(please\s+|can you\s+|could you\s+)?(draw|paint|sketch|generate|create|make|render|design|"
    r"find|search|show|look for|get|pull up)\b|"
    r"^\s*(请|帮我|给我|麻烦)?(画(一|个|只|张|幅|出|些|两)|生成(一|个|张|幅|些)|绘制|找(一|几|些|个|张)|搜|查找|创作|设计)",
    _I,
)
_WH = re.compile(r"^\s*(what|how|why|which|what's)\b", _I)
QUESTION = re.compile(
    r"(\?|？|^\s*(what|why|how|who|when|which|where|is|are|does|do|can|could)\b|吗|什么|为什么|如何|怎么|哪些|多少)", _I
)
CLAUSE_SPLIT = re.compile(
    r"[?？。!！；;]|\b(?:and then|then|also|after that|afterwards|and also|plus)\b|"
    r"(?:然后|再|并且|同时|接着|之后|另外|顺便|还有|以及|并)",
    _I,
)

# Zero-step requests the embedding stage compares with (each tool brings its own `examples`).
CHAT_EXAMPLES = [
    "Hello!",
    "Thanks a lot!",
    "Who are you?",
    "What can you do?",
    "What did I just ask you?",
    "你好",
    "谢谢",
    "你是谁？",
    "你能做什么？",
    "我刚才问了什么？",
]


def strong_cues(text: str, tools: Mapping[str, Any]) -> set[str]:
    """Names of the tools whose declared cues (`Tool.cues`) claim `text`."""
    found = {name for name, tool in tools.items() if any(p.search(text) for p in tool.cues.patterns)}
    definition = is_definition(text)
    one_clause = len(fine_clauses(text)) == 1
    for name in list(found):
        cues = tools[name].cues
        if cues.specific is not None and definition and not cues.specific.search(text):
            found.discard(name)  # "what is a temperature sensor?" is a knowledge question
        elif cues.imperative_only and (definition or _WH.search(text)) and not _IMPERATIVE.search(text) and one_clause:
            found.discard(name)  # "how does a diffusion model generate images?" asks about generation, not for one
    if one_clause:
        found -= {name for name in found if set(tools[name].cues.yields_to) & found}
    return found


def primary_cue(text: str, among: set[str], tools: Mapping[str, Any]) -> str | None:
    """Of the tools cued in one clause, the one whose cue comes first ("画一张温室的插画": the
    drawing, not the greenhouse device)."""
    first: dict[str, int] = {}
    for name in among:
        starts = [m.start() for p in tools[name].cues.patterns for m in [p.search(text)] if m]
        if starts:
            first[name] = min(starts)
    return min(first, key=first.get) if first else None


def is_definition(text: str) -> bool:
    return bool(DEFINITION.search(text) or _ZH_DEFINITION.search(text))


def is_question(text: str) -> bool:
    return bool(QUESTION.search(text))


def is_chat(text: str) -> bool:
    return any(p.search(text) for p in CHAT_CUES)


def clauses(text: str) -> list[str]:
    return [c.strip(" ,，、") for c in CLAUSE_SPLIT.split(text) if c and len(c.strip(" ,，、")) > 1]


_FINE_SPLIT = re.compile(r"\s*(?:,\s*and|\band\b|[,，、])\s*", re.I)


def fine_clauses(text: str) -> list[str]:
    """Clauses, also split at commas and "and" (only where several tools are already cued)."""
    return [p for c in clauses(text) for p in _FINE_SPLIT.split(c) if p and len(p.strip()) > 1]


def strip_command(tool: Any, text: str) -> str:
    """The request without the tool's command words (`Tool.cues.strip`), as its main argument."""
    out = text.strip()
    for pat in tool.cues.strip:
        out = pat.sub("", out, count=1).strip()
    return out if len(out) >= 2 else text.strip()
