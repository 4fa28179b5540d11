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

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        url = "http://127.0.0.1:8080/v1"
        return {"OPENAI_BASE_URL": url}, {"backend": "openai"}, {"base_url": url}


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


def test_bind_tools_returns_tool_calls_under_the_reply_schema():
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    fake = FakeChatModel(['{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}', '{"answer": "5"}'])
    chat = PolymodalChatModel(chat_model=fake).bind_tools([add], tool_choice="any")
    msg = chat.invoke("What is 2 + 3?")
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("add", {"a": 2, "b": 3})]
    sent = fake.calls[0]
    assert sent["messages"][0]["role"] == "system" and '"add"' in sent["messages"][0]["content"]
    schema = sent["json_schema"]  # "any": a call is required, of one of the bound tools
    assert schema["required"] == ["tool_calls"]
    assert schema["properties"]["tool_calls"]["items"]["anyOf"][0]["properties"]["name"] == {"const": "add"}
    result = add.invoke(msg.tool_calls[0])
    final = chat.invoke(["What is 2 + 3?", msg, result])
    assert final.content == "5" and not final.tool_calls
    assert "Result of tool call" in fake.calls[1]["messages"][-1]["content"]


def test_streamed_tool_call_aggregates_to_the_call():
    fake = FakeChatModel(['{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 1}}]}'])
    chat = PolymodalChatModel(chat_model=fake).bind_tools(
        [{"name": "add", "description": "Add.", "parameters": {"type": "object", "properties": {}}}]
    )
    full = None
    for chunk in chat.stream("1 + 1?"):
        full = chunk if full is None else full + chunk
    assert full.tool_calls[0]["name"] == "add" and full.tool_calls[0]["args"] == {"a": 1, "b": 1}


def test_structured_output_sends_the_schema_and_parses():
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str

    fake = FakeChatModel(['{"name": "Paris", "country": "France"}'] * 2)
    chat = PolymodalChatModel(chat_model=fake)
    assert chat.with_structured_output(City).invoke("Capital of France?") == City(name="Paris", country="France")
    assert fake.calls[0]["json_schema"]["required"] == ["name", "country"]
    raw = chat.with_structured_output(City, include_raw=True).invoke("Capital of France?")
    assert raw["parsed"].name == "Paris" and raw["parsing_error"] is None


def test_usage_metadata_on_invoke_and_stream():
    chat = PolymodalChatModel(chat_model=FakeChatModel(default="one two three"))
    usage = chat.invoke("count to three").usage_metadata
    assert usage["output_tokens"] > 0 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    full = None
    for chunk in chat.stream("count to three"):
        full = chunk if full is None else full + chunk
    assert full.usage_metadata == usage  # reported once, on the last chunk


def test_timeout_and_retries_reach_a_remote_backend():
    chat = PolymodalChatModel(backend="openai", base_url="http://127.0.0.1:9/v1", timeout=7, max_retries=1)
    backend = chat._backend()
    assert (backend.timeout, backend.max_retries) == (7.0, 1)
