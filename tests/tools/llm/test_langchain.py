"""The LangChain adapter: LangChain's own standard unit tests, plus behaviour over the scripted fake."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_tests.unit_tests import ChatModelUnitTests

from tools.llm.fake import FakeChatModel
from tools.llm.langchain import PolymodalChatModel, to_polymodal_messages


class TestPolymodalChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[PolymodalChatModel]:
        return PolymodalChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"backend": "fake", "model": "fake-chat"}


def test_invoke_passes_roles_and_returns_text():
    fake = FakeChatModel(["It is Paris."])
    chat = PolymodalChatModel(chat_model=fake)
    reply = chat.invoke([SystemMessage("Be brief."), HumanMessage("Capital of France?")])
    assert reply.content == "It is Paris."
    assert fake.calls[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]


def test_stream_yields_chunks_in_order():
    chat = PolymodalChatModel(chat_model=FakeChatModel(["one two three four"]))
    chunks = [c.content for c in chat.stream("count")]
    assert len(chunks) > 1 and "".join(chunks) == "one two three four"


def test_stop_and_max_tokens_reach_the_backend():
    fake = FakeChatModel(["x"])
    PolymodalChatModel(chat_model=fake, max_tokens=7).invoke("q", stop=["END"])
    assert fake.calls[0]["stop"] == ["END"] and fake.calls[0]["max_tokens"] == 7


def test_content_blocks_become_text():
    msgs = to_polymodal_messages([HumanMessage(content=[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])])
    assert msgs == [{"role": "user", "content": "ab"}]
