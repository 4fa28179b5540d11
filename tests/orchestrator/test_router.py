"""The fast router: cues in English and Chinese, look-alikes, attached images, compound requests."""

from __future__ import annotations

import pytest

from indexes.embedders import HashEmbedder
from orchestrator.router import FastRouter
from orchestrator.testing import fake_tools
from tools.base import FunctionTool


@pytest.fixture
def router():
    return FastRouter({t.name: t for t in fake_tools()}, embedder=HashEmbedder())


@pytest.mark.parametrize(
    "text, tool",
    [
        ("find a photo of a tabby cat", "image_search"),
        ("Show me pictures of the beach from my library", "image_search"),
        ("找一张海边的照片", "image_search"),
        ("draw a picture of a red fox on a frozen lake", "generate_image"),
        ("帮我画一只在月亮上的猫", "generate_image"),
        ("生成一张赛博朋克城市的图片", "generate_image"),
        ("What is the garden camera looking at right now?", "edge_query"),
        ("温室的温度传感器正常吗？", "edge_query"),
        ("What is CLIP?", "rag_answer"),
        ("什么是扩散模型？", "rag_answer"),
        ("What is a humidity sensor?", "rag_answer"),
        ("总结一下知识库里关于大模型的内容", "rag_answer"),
    ],
)
def test_clear_single_tool_requests(router, text, tool):
    route = router.route(text)
    assert route.tool == tool, route
    assert route.args is not None


def test_command_words_are_stripped_from_the_main_argument(router):
    assert router.route("find a photo of a tabby cat").args == {"query": "a tabby cat"}
    assert router.route("draw a picture of a red fox on a frozen lake").args == {"prompt": "a red fox on a frozen lake"}
    assert router.route("找一张海边的照片").args["query"] == "海边"


@pytest.mark.parametrize("text", ["hello", "Thanks a lot!", "你好", "你是谁？", "What did I just ask?"])
def test_small_talk_is_zero_step(router, text):
    route = router.route(text)
    assert route.zero_step and route.tool is None


def test_attached_image_goes_to_image_search(router):
    route = router.route("find more like this", image="/tmp/cat.jpg")
    assert route.tool == "image_search" and route.args["image"] == "/tmp/cat.jpg"


@pytest.mark.parametrize(
    "text",
    [
        "把知识库里关于边缘AI的要点总结一下，再找一张有猫的照片",
        "What is edge AI? Also show me a photo of a tractor.",
        "draw a picture of a cat, then draw a picture of a dog",
    ],
)
def test_compound_requests_are_not_decided_by_the_router(router, text):
    route = router.route(text)
    assert route.compound and route.tool is None


def test_user_tool_is_routed_by_embedding_similarity():
    def weather(city: str) -> str:
        """Tell the weather forecast for a city."""
        return "sunny"

    tool = FunctionTool(weather)
    tool.examples = ("weather forecast for Berlin tomorrow", "will it rain in Paris")
    router = FastRouter({tool.name: tool, **{t.name: t for t in fake_tools()}}, embedder=HashEmbedder())
    route = router.route("weather forecast for Paris tomorrow")
    assert route.tool == "weather" and route.args == {"city": "weather forecast for Paris tomorrow"}


def test_without_embedder_an_unclear_statement_is_left_to_the_llm():
    router = FastRouter({t.name: t for t in fake_tools()})
    route = router.route("cats")
    assert not route.decided
