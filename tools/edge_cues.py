"""How the router recognises a device request, built from the live registry, not from a list of
demo names: the ids, names and aliases devices announce, and words for the capabilities and
sensors they announce. A request names a device and asks for something a registered device can
do ("is the barn thermometer reading normal?", "温室现在的湿度"); a device name alone, or a
capability word alone, only hints (the LLM planner decides). With no device registered, nothing
here matches, and device questions are knowledge questions.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from tools.base import Cues, PlanExample

__all__ = ["CAPABILITY_WORDS", "SENSOR_WORDS", "PLAN_EXAMPLES", "device_cues", "planning_note", "capability_for"]

# Words that ask for a capability (English, Chinese); the first capability whose words match wins.
CAPABILITY_WORDS: dict[str, str] = {
    "snapshot": r"snapshot|take an? (photo|picture|shot)|capture (a|an|the) (frame|image)|快照|拍照|拍一张|截图",
    "detect_faces": r"\bfaces?\b|anyone|anybody|someone|somebody|\bwho\b|person|people|visitors?|人脸|有人|有没有人|谁",
    "readings": r"readings?|values?|history|\blast \d+|data\b|level|how (hot|cold|humid|warm|wet|dry)|"
    r"读数|数据|记录|多少度",
    "sensor_status": r"normal|behav|healthy|\bok\b|okay|anomal|fault|broken|stuck|drift|spike|working|status|"
    r"正常|异常|故障|状态",
    "classify": r"\bsees?\b|seeing|\bsaw\b|looking at|in (the |its )?view|what('s| is) (in|on)|classify|recogni[sz]e|"
    r"spot|animal|看到|看见|拍到|识别|画面|看看|有没有",
}
# Sensor names as devices announce them -> words people use for them.
SENSOR_WORDS: dict[str, str] = {
    "temperature": r"temperature|\btemp\b|hot|cold|warm|温度|气温|冷|热",
    "humidity": r"humidity|humid|moisture|湿度|潮湿",
    "soil_moisture": r"soil|土壤",
}
_NOW = r"\b(now|right now|currently|current|latest|live|at the moment|rn)\b|现在|目前|当前|最新|实时"
_ONLINE = r"\b(online|offline|connected|reachable)\b|在线|离线"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
# Device kinds as announced -> words for them (a kind word with "the/my" names the device).
# Words that may follow a device's name without making it part of another noun ("greenhouse gas").
_FOLLOW = frozenset(
    """see sees seeing saw spot spots detect detects show shows report reports read reads reading
readings record records measure measures measured temperature temp humidity moisture soil status state data level
levels value values history snapshot snapshots feed view frame camera cam sensor sensors node unit device thermometer
probe doorbell ok okay normal online offline
传感器 摄像头 节点 设备 温度 湿度 读数 数据 状态 画面 快照 土壤 温度计""".split()
)
_KIND_WORDS = {
    "camera": r"camera|cam|摄像头|相机|监控",
    "sensor": r"sensor|sensors|node|传感器|节点|探头",
    "door": r"door unit|doorbell|门禁|门铃",
    "thermometer": r"thermometer|温度计",
    "probe": r"probe|探头",
}


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted({w for w in words if w}, key=len, reverse=True))


def _names(device: Any) -> list[str]:
    raw = [device.id, device.id.replace("-", " ").replace("_", " "), device.name, *device.aliases]
    return [n.strip() for n in raw if n and len(n.strip()) >= 2]


def _name_pattern(names: list[str]) -> str:
    """One group `object` for any registered name: whole words in Latin script, any run in Chinese."""
    latin = _alternation(re.escape(n) for n in names if not _CJK.search(n))
    cjk = _alternation(re.escape(n) for n in names if _CJK.search(n))
    parts = ([rf"(?<![\w-])(?:{latin})(?![\w-])"] if latin else []) + ([rf"(?:{cjk})"] if cjk else [])
    return rf"(?P<object>{'|'.join(parts)})"


def _sensors(devices: list[Any]) -> set[str]:
    return {s for d in devices for c in d.capabilities.values() if isinstance(c, dict) for s in c.get("sensors", [])}


def device_cues(devices: list[Any]) -> Cues:
    """Cues for the registered `devices` (edge.registry.DeviceInfo or alike)."""
    if not devices:
        return Cues(repeatable=True)
    caps = {c for d in devices for c in d.capabilities}
    sensors = _sensors(devices)
    asks = _alternation(
        [CAPABILITY_WORDS[c] for c in caps if c in CAPABILITY_WORDS]
        + [SENSOR_WORDS[s] for s in sensors if s in SENSOR_WORDS]
        + [_NOW, _ONLINE]
    )
    names = _name_pattern([n for d in devices for n in _names(d)])
    kinds = _alternation(_KIND_WORDS.get(d.kind, re.escape(d.kind)) for d in devices if d.kind)
    sensed = _alternation(SENSOR_WORDS[s] for s in sensors if s in SENSOR_WORDS)
    flags = re.I
    patterns = [
        # a device named, and something asked of it, in one clause
        re.compile(rf"(?:{names})(?=[^.?!;。？！；]*?(?:{asks}))", flags),
        re.compile(rf"(?:{asks})[^.?!;。？！；]*?(?:{names})", flags),
    ]
    if kinds:  # "is the camera seeing anything?", "传感器现在正常吗"
        patterns.append(
            re.compile(
                rf"(\b(the|my|our|this|that)\s+|(?<![\w]))(?P<object>{kinds})\b"
                rf"(?=[^.?!;。？！；]*?(?:{asks}))",
                flags,
            )
        )
    if sensed:  # "what's the humidity right now?" when a humidity sensor is registered
        patterns.append(
            re.compile(
                rf"(?:{_NOW})[^.?!;。？！；]{{0,30}}?(?:{sensed})|(?:{sensed})[^.?!;。？！；]{{0,30}}?(?:{_NOW})", flags
            )
        )
    patterns.append(
        re.compile(
            rf"\b(devices?|sensors?|cameras?)\b[^.?!;]{{0,30}}(?:{_ONLINE})|(设备|传感器|摄像头)[^。？！；]{{0,10}}(?:{_ONLINE})",
            flags,
        )
    )
    follow = _FOLLOW
    weak = [re.compile(names.replace("?P<object>", ""), flags)]
    if kinds:
        weak.append(re.compile(rf"\b({kinds})\b", flags))
    return Cues(
        patterns=tuple(patterns),
        weak=tuple(weak),
        follow=follow,
        repeatable=True,
        specific=re.compile(rf"{weak[0].pattern}|{_NOW}", flags),
    )


def capability_for(text: str, caps: dict[str, Any]) -> str | None:
    """The capability `text` asks for, among those a device has (None: the words do not say)."""
    return next((c for c, words in CAPABILITY_WORDS.items() if c in caps and re.search(words, text, re.I)), None)


# Worked plans for the planner: fixed (the prompt prefix stays cached), the device named the way a
# user would; the planner reads the registered devices' real names from the request (`planning_note`).
PLAN_EXAMPLES = (
    PlanExample(
        "温室传感器正常吗？顺便画一张温室的插画",
        (
            ("edge_query", {"device": "温室传感器", "capability": "sensor_status"}),
            ("generate_image", {"main": "温室的插画"}),
        ),
    ),
    PlanExample(
        "Check what the yard camera sees, then find similar photos in my library",
        (
            ("edge_query", {"device": "yard camera", "capability": "classify"}),
            ("image_search", {"main": "ref:1:summary"}),
        ),
    ),
)


def planning_note(devices: list[Any]) -> str:
    """What the planner is told with each request: the devices registered now (or that none is)."""
    if not devices:
        return "No edge device is registered now: device questions are questions for the documents."
    listed = "; ".join(f"{d.name} ({d.id}): {', '.join(d.capabilities)}" for d in devices)
    return f"Registered edge devices: {listed}."
