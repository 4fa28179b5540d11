"""Explicit cues for the fast router: English and Chinese patterns that name a tool's job.

A strong cue is an action on a tool's object ("find a photo", "画一只", "the greenhouse sensor
now"); a question form is only a weak hint for the knowledge base. Definition questions
("what is CLIP?", "什么是传感器") are knowledge questions even when they name a tool's object.
Router examples (EN + ZH) per tool live here too: the embedding stage compares requests with them.
"""

from __future__ import annotations

import re

__all__ = ["STRONG_CUES", "CHAT_CUES", "DEFINITION", "QUESTION", "CLAUSE_SPLIT", "EXAMPLES", "strong_cues",
           "clauses", "fine_clauses", "primary_cue", "is_chat", "is_definition", "is_question", "strip_command"]

_I = re.I

STRONG_CUES: dict[str, list[re.Pattern]] = {
    "generate_image": [
        re.compile(r"\b(generate|draw|paint|sketch|render|illustrate|design|create|make|produce)\b[^.?!;]{0,40}?"
                   r"\b(image|picture|pic|illustration|drawing|painting|artwork|art|poster|logo|wallpaper|icon|"
                   r"portrait|scene|banner|avatar|cartoon)s?\b", _I),
        re.compile(r"(^|\b(please|can you|could you|now|then|and|also)\s+)(draw|paint|sketch|illustrate|imagine)\b"
                   r"(?!\s+(conclusions?|attention|on|from|up|a conclusion|lessons?)\b)", _I),
        re.compile(r"\b(text-to-image|diffusion model to (make|create|draw))\b", _I),
        re.compile(r"(生成|画|绘制|绘|创作|制作|设计|做|来)[^，。？！；]{0,12}?(图|画|插画|海报|图片|图像|壁纸|头像|封面|logo|插图)"),
        re.compile(r"(画|绘制|描绘)(一|个|只|张|幅|出|些|两|三|条|座|朵|辆|片)"),
        re.compile(r"(帮我|给我|请|再)画"),
    ],
    "image_search": [
        re.compile(r"\b(find|search|show|look for|look up|get|pull up|retrieve|browse|give me|fetch|locate|any|"
                   r"have we got|do (i|we) have)\b[^.?!;]{0,40}?\b(photos?|pictures?|images?|pics|shots|snapshots)\b", _I),
        re.compile(r"\b(photos?|pictures?|images?|pics)\b[^.?!;]{0,20}\b(in|from) (my|our|the) "
                   r"(library|gallery|album|collection|photo library|image library)", _I),
        re.compile(r"\b(similar|like this|looks like this|same as this|matching) (one|photos?|pictures?|images?)?", _I),
        re.compile(r"(找|搜|查|检索|显示|看看|给我看|有没有|翻|调出|列出)[^，。？！；]{0,14}?(照片|图片|相片|图像|相册|图库|图)"),
        re.compile(r"(照片|图片|相片|图库|相册)(库)?(里|中)"),
        re.compile(r"(相似|类似|相同|一样|差不多)的(照片|图片|图|相片)"),
    ],
    "edge_query": [
        re.compile(r"\b(the|my|our|garden|front|back|greenhouse|door|kitchen|living room|office)\s+"
                   r"(camera|cam|sensor|sensors|thermometer|door unit|doorbell|device|node|lock)\b", _I),
        re.compile(r"\b(greenhouse|garden camera|door unit|front door)\b", _I),
        re.compile(r"\b(temperature|humidity|reading|readings|status)\b[^.?!;]{0,30}\b(now|right now|currently|"
                   r"at the moment|today|latest|current)\b", _I),
        re.compile(r"\b(current|latest|live)\b[^.?!;]{0,20}\b(temperature|humidity|readings?|frame|snapshot|status)\b", _I),
        re.compile(r"\b(edge device|devices?)\b[^.?!;]{0,30}\b(online|offline|see|report|sees|reporting)\b", _I),
        re.compile(r"(摄像头|相机|监控|传感器|温室|门禁|门口|大门|设备|节点|温度计)[^，。？！；]{0,14}?"
                   r"(现在|当前|目前|正常|看到|拍到|读数|状态|多少|怎么样|在线|离线|数据|检测|识别|报告|有人|人脸|有没有|异常)"),
        re.compile(r"(门口|门外|大门)(有人|有没有人)"),
        re.compile(r"(现在|当前|目前|最新)[^，。？！；]{0,10}?(温度|湿度|读数|画面|状态)"),
        re.compile(r"(温室|花园摄像头|门口的设备|门禁)"),
    ],
    "rag_answer": [
        re.compile(r"\b(knowledge base|knowledgebase|the documents?|our docs|the docs|my notes|the articles?|"
                   r"according to|in the (kb|corpus)|from the (kb|corpus|documents))\b", _I),
        re.compile(r"\b(summari[sz]e|summary of|key points|main points|overview of|explain|tell me about|compare|"
                   r"difference between|pros and cons|draw (a )?conclusions?|"
                   r"what does the (document|article|paper) say)\b", _I),
        re.compile(r"(知识库|文档|资料|文章|笔记|总结|要点|概述|归纳|概括|解释|介绍一下|介绍下|讲讲|说说)"),
    ],
}

CHAT_CUES = [
    re.compile(r"^\s*(hi|hello|hey|thanks|thank you|thx|good (morning|afternoon|evening|night)|bye|goodbye|"
               r"ok|okay|cool|great|nice|awesome|lol)\b[\s!.,]*(there|again|so much|a lot)?[\s!.,]*$", _I),
    re.compile(r"\b(who are you|what can you do|what are you|your name|how are you|are you a (bot|robot|human))\b", _I),
    re.compile(r"\b(what did i (just )?(ask|say)|my (last|previous|first) (question|message)|what did you (just )?say|"
               r"repeat (that|your answer)|what were we talking about|summari[sz]e (our|this) (conversation|chat))\b", _I),
    re.compile(r"\bwhere did (that|this|it) come from\b|\bsources? (of|for) (that|this)\b", _I),
    re.compile(r"^\s*(你好|您好|嗨|哈喽|谢谢|多谢|感谢|再见|拜拜|早上好|晚上好|晚安|好的|嗯|好吧|不错)[\s!！。,，~]*(啊|呀|你)?[\s!！。,，~]*$"),
    re.compile(r"(你是谁|你能做什么|你会什么|你叫什么|你有什么功能|你好吗)"),
    re.compile(r"(我刚才问|我上一个问题|我之前问|你刚才说|我们聊了什么|我们刚才聊|重复一下你的回答|刚才的出处|那是从哪来的|出处是哪里)"),
]

DEFINITION = re.compile(
    r"^\s*(what is|what are|what's|whats|define|explain|what does \w+ mean|how does (a|an)\b|how do (a|an)?\b|"
    r"why (do|does|is|are)|describe how|tell me about|what kind of|what types? of)\s+(?!(the|my|our|this|that)\b)", _I)
_ZH_DEFINITION = re.compile(r"(什么是|是什么|是啥|介绍一下|介绍下|解释|原理|为什么|区别|有哪些|的作用|的优势|的意思|怎么工作|如何工作|的定义|"
                            r"是怎么|是如何|怎样工作|有什么不同|发展历史|的发展)")
_IMPERATIVE = re.compile(r"^\s*(please\s+|can you\s+|could you\s+)?(draw|paint|sketch|generate|create|make|render|design|"
                         r"find|search|show|look for|get|pull up)\b|^\s*(请|帮我|给我|麻烦)?(画(一|个|只|张|幅|出|些|两)|生成(一|个|张|幅|些)|"
                         r"绘制|找(一|几|些|个|张)|搜|查找|创作|设计)", _I)
_WH = re.compile(r"^\s*(what|how|why|which|what's)\b", _I)
QUESTION = re.compile(r"(\?|？|^\s*(what|why|how|who|when|which|where|is|are|does|do|can|could)\b|吗|什么|为什么|如何|怎么|哪些|多少)", _I)
CLAUSE_SPLIT = re.compile(r"[?？。!！；;]|\b(?:and then|then|also|after that|afterwards|and also|plus)\b|"
                          r"(?:然后|再|并且|同时|接着|之后|另外|顺便|还有|以及|并)", _I)

# Requests the embedding stage compares with (besides each tool's description and `examples`).
EXAMPLES: dict[str, list[str]] = {
    "rag_answer": [
        "What is retrieval-augmented generation?", "Explain how edge AI reduces latency.",
        "Summarize the key points about large language models in the knowledge base.",
        "What does the article say about multimodal models?", "How do diffusion models work?",
        "什么是生成式人工智能？", "知识库里关于边缘计算的要点有哪些？", "大模型有哪些应用？", "解释一下多模态学习。",
        "为什么边缘AI能保护隐私？",
    ],
    "image_search": [
        "Find a photo of a cat.", "Show me pictures of the beach from my library.", "Search my images for a rocket.",
        "Any photos of coffee?", "Find images similar to this one.",
        "找一张猫的照片", "给我看看图库里有咖啡的图片", "搜索宇航员的照片", "有没有马的照片？", "找和这张相似的图片",
    ],
    "generate_image": [
        "Draw a red fox in the snow.", "Generate an image of a futuristic city at night.",
        "Create a poster of a robot reading a book.", "Paint a watercolor landscape.", "Make a picture of a dragon.",
        "画一只在月亮上的猫", "生成一张赛博朋克城市的图片", "帮我画一幅山水画", "设计一个咖啡店的海报", "画一个机器人",
    ],
    "edge_query": [
        "What does the garden camera see right now?", "Is the greenhouse temperature sensor behaving normally?",
        "What's the current humidity in the greenhouse?", "Is anyone at the front door?", "Which devices are online?",
        "花园摄像头现在看到了什么？", "温室的温度传感器正常吗？", "温室现在的湿度是多少？", "门口有人吗？", "哪些设备在线？",
    ],
    "": [  # zero-step: small talk and questions about the conversation
        "Hello!", "Thanks a lot!", "Who are you?", "What can you do?", "What did I just ask you?",
        "你好", "谢谢", "你是谁？", "你能做什么？", "我刚才问了什么？",
    ],
}

# Command words in front of the thing itself ("find photos of a cat" -> "a cat").
_STRIP = {
    "image_search": [
        re.compile(r"^\s*(please\s+)?(can you\s+|could you\s+)?(find|search( for)?|show( me)?|look for|look up|get( me)?|"
                   r"pull up|retrieve|fetch|give me|locate|any)\s+((me\s+)?(a|an|the|some|all|my|any)\s+)?"
                   r"(photos?|pictures?|images?|pics|shots)\s*(of|with|showing|that show)?\s+", _I),
        re.compile(r"^\s*(请)?(帮我)?(找|搜索|搜|查找|检索|给我看看|看看|显示)(一下)?(一张|几张|一些|些)?"),
        re.compile(r"\s+(in|from) (my|our|the) (library|gallery|album|collection|photo library|image library)\s*[.?!]*$", _I),
        re.compile(r"(的)?(照片|图片|相片|图像)(吧)?[。？！?!]*$"),
    ],
    "generate_image": [
        re.compile(r"^\s*(please\s+)?(can you\s+|could you\s+)?(generate|draw|paint|sketch|render|illustrate|create|make|"
                   r"produce|design)\s+(me\s+)?(((a|an|some)\s+)?(image|picture|pic|photo)s?\s+(of|showing|with)\s+)?", _I),
        re.compile(r"^\s*(请)?(帮我|给我)?(生成|画|绘制|创作|制作|设计)(一下)?"),
    ],
}


def strong_cues(text: str) -> set[str]:
    found = {tool for tool, pats in STRONG_CUES.items() if any(p.search(text) for p in pats)}
    if "edge_query" in found and is_definition(text) and not _edge_specific(text):
        found.discard("edge_query")  # "what is a temperature sensor?" is a knowledge question
    if (is_definition(text) or _WH.search(text)) and not _IMPERATIVE.search(text) and len(fine_clauses(text)) == 1:
        # "how does a diffusion model generate images?" asks about generation; it does not ask for one
        found -= {"generate_image", "image_search"}
    if "image_search" in found and "generate_image" in found and len(fine_clauses(text)) == 1:
        # "draw a picture like the photos in my library" -> one generation; generation verbs win
        found.discard("image_search")
    return found


def _edge_specific(text: str) -> bool:
    return bool(re.search(r"\b(the|my|our)\s+(garden|greenhouse|front|door|camera|sensor)|\b(now|currently|right now)\b|"
                          r"(现在|当前|目前)", text, _I))


def primary_cue(text: str, among: set[str]) -> str | None:
    """Of the tools cued in one clause, the one whose cue comes first ("画一张温室的插画": the
    drawing, not the greenhouse device)."""
    first: dict[str, int] = {}
    for tool in among:
        starts = [m.start() for p in STRONG_CUES.get(tool, []) for m in [p.search(text)] if m]
        if starts:
            first[tool] = min(starts)
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


def strip_command(tool: str, text: str) -> str:
    """The request without its command words, as the tool's main argument."""
    out = text.strip()
    for pat in _STRIP.get(tool, []):
        out = pat.sub("", out, count=1).strip()
    return out if len(out) >= 2 else text.strip()
