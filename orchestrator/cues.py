"""The fast router's reading of a request, in English and Chinese: clauses, questions, small talk,
and which tools' declared cues (`tools.base.Cues`) claim it. Each tool declares its own strong cues
(an action on its object: "find a photo", "画一只"); this module knows no tool. Definition questions
("what is CLIP?", "什么是传感器") are knowledge questions even when they name a tool's object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "CHAT_CUES",
    "DEFINITION",
    "QUESTION",
    "CLAUSE_SPLIT",
    "CHAT_EXAMPLES",
    "CueReading",
    "read_cues",
    "strong_cues",
    "clauses",
    "fine_clauses",
    "is_chat",
    "about_conversation",
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
    re.compile(
        r"\b(who are you|what (else )?(can|could) you (do|help( me)? with)|what are you|your name|how are you|"
        r"are you a (bot|robot|human))\b",
        _I,
    ),
    re.compile(
        r"\b(what did i (just )?(ask|say)|my (last|previous|first) (question|message)|what did you (just )?say|"
        r"repeat (that|your answer)|what (were|are) we (talking|chatting) about|"
        r"summari[sz]e (our|this) (conversation|chat))\b",
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
    r",?\s+and\s+(?:separately,?\s+)?(?=(?:what|which|how|who|when|where|why|tell|check|find|show|look|"
    r"generate|make|draw|create|search|give|read|take|is|are|does|do|can|could|pull)\b)|"
    r"(?:然后|再|并且|同时|接着|之后|另外|顺便|还有|以及|并)",
    _I,
)
# Talk about this conversation ("summarize our chat", "我们刚才聊了什么"): no tool, whatever words it uses.
CONVERSATION = re.compile(
    r"\b(our|this) (conversation|chat|discussion)\b|\b(your|the) (last|previous) (answer|reply|response|message)\b|"
    r"\bwhat did (i|you|we) (just )?(ask|say|talk about|discuss)\b|\brepeat (that|your (last )?answer)\b|"
    r"\b(first|last|previous) thing (i|you) (said|asked|told|wrote)\b|\bi (just |first |last )?(said|asked|told|wrote)"
    r"( to)? you\b|\byou (just )?(said|told me|answered|replied)\b|"
    r"(我们|咱们)(刚才|之前|前面)?(聊|说|讨论)(了|过)|你(刚才|上一条|上一个)|我(刚才|之前|上一个|最开始|第一句)(问|说|跟你)",
    _I,
)
# A question to the assistant about itself ("are you able to ...?", "你支持中文吗"), not a task for a tool.
ABOUT_ASSISTANT = re.compile(
    r"^\s*((lol|haha+|hah|hmm+|um+|oh|wow|well|so|ok(ay)?|hey)[\s,!.]+)*"  # an interjection first: "lol you're ..."
    r"(how('s| is| are| was) (you|your)\b|you('re| are)\b|why (did|do|would) you\b|"
    r"(can|could|are|do|will|would|did) you\b(?!\s+(please\s+)?"
    r"(find|search|show|draw|paint|generate|make|create|tell|explain|summari[sz]e|check|look|take|get|read|give|pull|"
    r"compare|list|describe|help|remind))|what (else )?(can|do|are) you\b|who (made|built|are|created) you\b|"
    r"what('s| is| are) your (name|model|favou?rite|opinion)\b)|"
    r"^\s*(你|您)(都|还)?(会|能|可以|支持|有|是|叫|懂|喜欢|好|几岁|背后|用的|自己|的名字|基于|觉得|认为)",
    _I,
)

# Zero-step requests the embedding stage compares with (each tool brings its own `examples`).
CHAT_EXAMPLES = [
    "Hello!",
    "Thanks a lot!",
    "Tell me who you are.",
    "What are you able to help me with?",
    "Which question did I open this chat with?",
    "你好",
    "谢谢",
    "你是谁？",
    "你能做什么？",
    "我刚才问了什么？",
]


@dataclass
class CueReading:
    """Which tools a request's cues name. `strong`: a cue that decides alone. `hinted`: a tool's
    weak cue ("draw ...", a device's name without a question for it). `guarded`: a cue a guard
    dropped ("image compression"). `negated`: a tool the user ruled out ("not a photo search")."""

    strong: set[str] = field(default_factory=set)
    hinted: set[str] = field(default_factory=set)
    guarded: set[str] = field(default_factory=set)
    negated: set[str] = field(default_factory=set)

    @property
    def weak(self) -> set[str]:
        return (self.hinted | self.guarded) - self.strong


def read_cues(text: str, tools: Mapping[str, Any]) -> CueReading:
    """Read `text` with every tool's declared cues (`Tool.cues`) and the guards below."""
    out = CueReading()
    definition = is_definition(text)
    one_clause = len(fine_clauses(text)) == 1
    for name, tool in tools.items():
        cues = tool.cues
        verdicts = [_verdict(m, text, cues.follow) for p in cues.patterns for m in p.finditer(text)]
        if "ok" in verdicts:
            out.strong.add(name)
        elif "negated" in verdicts:
            out.negated.add(name)
        elif verdicts:
            out.guarded.add(name)
        if name not in out.negated and any(p.search(text) for p in cues.weak):
            out.hinted.add(name)
    for name in list(out.strong):
        cues = tools[name].cues
        if cues.specific is not None and definition and not cues.specific.search(text):
            out.strong.discard(name)  # "what is a humidity sensor?" is a knowledge question
        elif cues.imperative_only and (definition or _WH.search(text)) and not _IMPERATIVE.search(text) and one_clause:
            out.strong.discard(name)  # "how do diffusion models make pictures?" asks about generation
        else:
            continue
        out.guarded.add(name)
    if one_clause:
        out.strong -= {name for name in out.strong if set(tools[name].cues.yields_to) & out.strong}
    return out


def strong_cues(text: str, tools: Mapping[str, Any]) -> set[str]:
    """Names of the tools whose declared cues claim `text` by themselves."""
    return read_cues(text, tools).strong


# -- guards -----------------------------------------------------------------------------------

_NEGATION = re.compile(
    r"\b(not|don'?t|do not|does not|doesn'?t|no need to|never|instead of|rather than|without)\b|"
    r"(不要|别|不用|不是|而不是|不需要|无需|不必)",
    _I,
)
_TOPIC = re.compile(r"\b(about|regarding|concerning|on|related to|discussing|explaining|describing)\b", _I)
_CLAUSE_EDGE = re.compile(r"[,，;；.。?？!！]")
# English closed-class words (and a few participles) that may follow a noun without compounding it
_FUNCTION_WORDS = frozenset(
    """a an the this that these those my our your his her their its me us you him them it i we
they he she of in on at to for from with by about as into onto over under near than then and or but so if when while
where which who whom whose what how why please now right currently today tonight yesterday again also too just here
there is are was were be been being am do does did has have had can could will would should may might must not no
s like showing taken shot made captured saved uploaded containing featuring tagged out up off down back""".split()
)
_WORD = re.compile(r"\s*([A-Za-z]+|[\u4e00-\u9fff]|-)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _verdict(m: re.Match[str], text: str, follow: frozenset[str]) -> str:
    """ "ok", "negated" or "guarded" for one cue match."""
    before = text[max(0, m.start() - 30) : m.start()]
    before = _CLAUSE_EDGE.split(before)[-1]
    if _NEGATION.search(before):
        return "negated"  # "not a photo search", "别去找照片"
    if "object" not in m.re.groupindex or m.group("object") is None:
        return "ok"
    if _TOPIC.search(text[m.start() : m.start("object")]):
        return "guarded"  # "find the document about image compression": the photo is the topic
    noun = m.group("object")
    if " " in noun.strip() or (_CJK.search(noun) and len(noun) >= 4):
        return "ok"  # a name of several words ("greenhouse temperature sensor", "花园摄像头") qualifies nothing
    return "guarded" if _qualifies_next(text, m.start("object"), m.end("object"), follow) else "ok"


def is_definition(text: str) -> bool:
    return bool(DEFINITION.search(text) or _ZH_DEFINITION.search(text))


def is_question(text: str) -> bool:
    return bool(QUESTION.search(text))


def about_conversation(text: str) -> bool:
    """Talk about this conversation or the assistant itself: a zero-step request."""
    return bool(CONVERSATION.search(text) or ABOUT_ASSISTANT.search(text))


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


def _qualifies_next(text: str, start: int, end: int, follow: frozenset[str]) -> bool:
    """Whether the noun text[start:end] only qualifies what follows it ("image compression",
    "温室气体", "图神经网络", "照片的资料"): then it names no object of the tool."""
    noun = text[start:end]
    if _CJK.search(noun[-1:]):
        after = _cjk_words_after(text, start, end)
        if after and after[0][0] == "的" and len(after) > 1:
            after = after[1:]  # "照片的资料": the photos' documents
        return bool(after) and after[0][1].startswith("n") and after[0][0] not in follow
    m = _WORD.match(text, end)
    if m is None:
        return False
    word = m.group(1).lower()
    if word == "-":
        return True  # "image-based"
    if not word.isascii() or word in _FUNCTION_WORDS or word in follow:
        return False
    return not noun.lower().endswith("s")  # plural nouns do not qualify: "photos taken in Kyoto"


def _cjk_words_after(text: str, start: int, end: int) -> list[tuple[str, str]]:
    """The words (with parts of speech) after text[start:end] in its clause, as jieba cuts them."""
    import jieba.posseg as pseg

    clause_end = next((m.start() for m in _CLAUSE_EDGE.finditer(text, end)), len(text))
    out, pos = [], 0
    for word, flag in pseg.lcut(text[start:clause_end]):
        if pos >= end - start:
            out.append((word, flag))
        pos += len(word)
    return out
