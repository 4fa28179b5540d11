"""Agent factories the server tests start `polymodal serve/mcp --agent serve_agents:NAME` with (this folder
is put on the subprocess's PYTHONPATH). Fakes only: each builds in milliseconds."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from orchestrator.testing import fake_agent, fake_tools
from tools.base import Tool, ToolResult
from tools.llm import FakeChatModel


def _chat(messages: list[dict]) -> str:
    """The chat reply names every user message it was shown: history that reached the LLM is visible."""
    return "seen: " + " | ".join(m["content"] for m in messages if m["role"] == "user")


def echo_agent(config: Any = None) -> Any:
    return fake_agent(FakeChatModel(default=_chat), config=config)


class EndlessChatModel(FakeChatModel):
    """Streams words until the stream is closed (a client that leaves must stop it)."""

    def stream(self, messages: list[dict], **kwargs: Any):
        while True:
            time.sleep(0.02)
            yield "word "


def endless_agent(config: Any = None) -> Any:
    return fake_agent(EndlessChatModel(default="x"), config=config)


class PeakResult(ToolResult):
    def __init__(self, peak: int) -> None:
        self.peak = peak

    def summary(self) -> str:
        return f"peak {self.peak}"


class SlowCountTool(Tool):
    """Takes a while and reports the most runs it ever saw at once (it declares no limit itself:
    only the server's queue can keep the runs apart)."""

    name = "count_sheep"
    description = "Count sheep slowly."
    examples = ("count sheep",)

    def __init__(self) -> None:
        super().__init__()
        self._now = 0
        self._peak = 0
        self._lock = threading.Lock()

    def run(self, text: str) -> PeakResult:
        """Args:
        text: what to count
        """
        with self._lock:
            self._now += 1
            self._peak = max(self._peak, self._now)
        time.sleep(0.3)
        with self._lock:
            self._now -= 1
            return PeakResult(self._peak)


def queued_agent(config: Any = None) -> Any:
    plan = '{"steps": [{"id": 1, "tool": "count_sheep", "args": {"text": "sheep"}, "depends_on": []}]}'
    return fake_agent(FakeChatModel(default=plan), tools=[*fake_tools(), SlowCountTool()], config=config)


class PhotoSearchTool(Tool):
    """Finds one real file (in $PHOTO_DIR): the answer must show it as a URL, never as its path."""

    name = "image_search"
    description = "Find photos in the image library by text."
    examples = ("find photos of a cat",)

    def run(self, query: str) -> Any:
        """Args:
        query: what the photo shows
        """
        from tools.testing import FakeImageHit, FakeImageResult

        path = Path(os.environ["PHOTO_DIR"]) / "cat.png"
        Image.new("RGB", (8, 8), (200, 120, 40)).save(path)
        return FakeImageResult(query, [FakeImageHit(str(path), 0.9)])


def photo_agent(config: Any = None) -> Any:
    return fake_agent(FakeChatModel(default="x"), tools=[PhotoSearchTool()], config=config)


KB_DOCS = {
    "harbor": (
        "The Larkspur harbor was built in 1887. Its lighthouse is painted green and stands 31 meters tall. "
        "Fishing boats leave the harbor every morning at five."
    ),
    "bakery": "The Moonrise bakery sells rye bread and cinnamon rolls. It opens at seven and closes at two.",
}


def build_kb(folder: Path) -> None:
    """The test knowledge base: the real index (FAISS + SQLite) with the hash embedder."""
    from indexes.embedders import HashEmbedder
    from indexes.text import Document, TextIndex

    index = TextIndex.open(folder, HashEmbedder(256))
    index.upsert([Document(id=k, text=v, source=f"/docs/{k}.txt") for k, v in KB_DOCS.items()])
    index.close()


def kb_agent(config: Any = None) -> Any:
    """rag_answer over the knowledge base in $KB_DIR; the LLM is the real offline one when
    $REAL_LLM is set, else a fake that answers with a citation the checks accept."""
    from indexes.embedders import HashEmbedder
    from indexes.text import TextIndex
    from polymodal.config import Config
    from tools.llm import get_chat_model
    from tools.rag import RagAnswerTool

    config = config or Config()
    folder = Path(os.environ["KB_DIR"])
    if os.environ.get("REAL_LLM"):
        llm = get_chat_model(config.llm, config.paths.cache())
    else:
        llm = FakeChatModel(default="The lighthouse stands 31 meters tall [1].")
    rag = RagAnswerTool(folder, config=config, llm=llm, index=TextIndex.open(folder, HashEmbedder(256)))
    return fake_agent(llm, tools=[rag, *fake_tools()[1:]], config=config)
