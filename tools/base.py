"""The tool contract: everything the orchestrator uses from a tool is declared here, with defaults.

    class ImageSearchTool(Tool):
        name = "image_search"
        description = "Find photos in the image library by text or by example image."
        examples = ("find photos of a cat",)               # requests the router compares with

        def run(self, query: str = "", k: int = 5, *, context: ToolContext | None = None) -> ImageSearchResult:
            ...

A tool has a name, a description, an input schema derived from `run`'s type hints (parameter
descriptions from an `Args:` block; `context` is never part of it) and `run()`. Heavy models load
in `setup()`, called once on first use. What the planner needs besides (how the fast router
recognises a request: `cues`; worked plans for the LLM: `plan_examples`; argument filling,
follow-ups, warm-up, text streaming, a concurrency limit) are attributes and methods below with
defaults, so a tool overrides only what it has. Results inherit `ToolResult` (summary, citations,
artifacts, ok/error, provenance); `read_result()` reads any value through that one protocol.
A typed function becomes a tool with `FunctionTool(fn)`; a LangChain BaseTool with `LangChainTool`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import threading
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from polymodal.cancel import CancelToken, cancel_scope
from polymodal.errors import Cancelled, ToolError
from tools.schema import accepts_context, schema_from_signature, to_plain, validate_args

__all__ = [
    "Tool",
    "ToolContext",
    "ToolResult",
    "ResultView",
    "read_result",
    "Cues",
    "PlanExample",
    "main_text_arg",
    "image_arg",
    "result_fields",
    "FunctionTool",
    "LangChainTool",
    "schema_from_signature",
    "validate_args",
    "to_plain",
]

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass
class ToolContext:
    """What a running tool may use besides its arguments: progress reports and cancellation. A
    long tool calls `check_cancelled()` between units of work; code below the tool (an LLM
    backend) reads the same token through `polymodal.cancel.check_cancelled()`."""

    progress: Progress = _no_progress
    cancel: threading.Event = field(default_factory=CancelToken)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(getattr(self.cancel, "reason", "cancelled by the user"))


@dataclass(frozen=True)
class Cues:
    """How the fast router recognises a request for a tool without the LLM (English and Chinese).

    `patterns` are strong cues: an action on the tool's object ("find a photo", "画一只"). A named
    group `object` marks the object noun: the router drops the cue when that noun only qualifies
    another one ("image compression", "图神经网络", "温室气体") or is the topic of something else
    ("the document about images"), unless the next word is one of `follow` (the tool's own nouns:
    "greenhouse temperature"). `weak` patterns hint at the tool without deciding it ("draw ..."):
    a request with only weak cues goes to the LLM planner. `strip` removes command words before
    the rest becomes the main argument.
    """

    patterns: tuple[re.Pattern[str], ...] = ()
    weak: tuple[re.Pattern[str], ...] = ()
    follow: frozenset[str] = frozenset()
    strip: tuple[re.Pattern[str], ...] = ()
    imperative_only: bool = False  # a question about the job ("how do diffusion models make images?") is no request
    specific: re.Pattern[str] | None = None  # a definition question keeps the cue only where this matches too
    yields_to: tuple[str, ...] = ()  # in one clause cued for these tools as well, they win
    repeatable: bool = False  # two clauses asking for it are two steps ("draw a cat, then draw a dog")
    attachment: bool = False  # an attached image with no other cue comes here
    questions: bool = False  # a question that no cue claims comes here (the knowledge base)


@dataclass(frozen=True)
class PlanExample:
    """A worked plan shown to the LLM planner: a request and its steps as (tool, arguments).

    Argument names may be roles: "main" is the tool's main text argument; a value "ref:N:field"
    is a reference to step N's output field. An example naming a tool that is not registered is
    left out of the prompt.
    """

    request: str
    steps: tuple[tuple[str, dict[str, str]], ...] = ()


class Tool:
    """Base class. Subclasses set `name`, `description` and implement `run`; the rest is optional."""

    name: str = ""
    description: str = ""
    examples: tuple[str, ...] = ()  # requests for this tool: the fast router embeds them
    cues: Cues = Cues()
    plan_examples: tuple[PlanExample, ...] = ()
    max_concurrency: int | None = None  # runs at once across every caller (None: no limit)

    def __init__(self) -> None:
        self._setup_lock = threading.Lock()
        self._is_setup = False
        self._slots: threading.BoundedSemaphore | None = None

    @classmethod
    def from_config(cls, config: Any, models: Any = None) -> "Tool":
        """The tool as `config` (a `polymodal.config.Config`) describes it; `models` is the agent's
        model manager, whose one LLM the tools share. Default: the constructor with no arguments."""
        return cls()

    # -- lifecycle ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Load heavy resources. Called once, lazily, before the first run."""

    def ensure_setup(self) -> None:
        if self._is_setup:
            return
        with self._setup_lock:
            if not self._is_setup:
                self.setup()
                self._is_setup = True

    def reset(self) -> None:
        """Forget that setup() ran (e.g. after closing the connection it made): the next use runs it again."""
        with self._setup_lock:
            self._is_setup = False

    def warm_up(self) -> None:
        """Prepare ahead of the first request (e.g. prefill a fixed prompt); an app calls it at start."""

    def run(self, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- what the planner and executor use ---------------------------------------------------
    def target(self) -> Callable[..., Any]:
        """The function whose signature is the input schema and which `__call__` runs."""
        return self.run

    @property
    def input_schema(self) -> dict[str, Any]:
        return schema_from_signature(self.target())

    def planning_note(self) -> str:
        """Live state the planner is told with each request (not in the cached prompt prefix): e.g. the
        devices registered now. Default: nothing."""
        return ""

    def describe(self) -> str:
        """The description the planner reads now (a tool may add live state, e.g. registered devices)."""
        return self.description

    def spec(self) -> dict[str, Any]:
        """What the planner sees: name, description and the JSON schema of the arguments."""
        return {"name": self.name, "description": self.describe(), "parameters": self.input_schema}

    def route_args(self, text: str, image: str | None = None) -> dict[str, Any] | None:
        """Arguments for a request the router gave this tool, or None to fill them generically
        (the request without its command words as the main text argument)."""
        return None

    def check_plan_args(self, args: dict[str, Any]) -> None:
        """Refuse arguments a plan gives that cannot work now (raise a `PolymodalError` saying why), so
        the planner asks again; e.g. edge_query refuses a device that is not registered."""

    def followup_args(self, args: dict[str, Any], subject: str) -> dict[str, Any] | None:
        """Arguments for "and <subject>?" after a run with `args`, or None when the planner must
        decide (default: the subject replaces the main text argument)."""
        key = main_text_arg(self)
        return {**args, key: subject} if key and key in args else None

    def refine_args(self, args: dict[str, Any], change: str) -> dict[str, Any] | None:
        """Arguments for "make it <change>" after a run with `args`; None: not refinable."""
        return None

    def output_fields(self) -> list[str]:
        """Result fields a later step can reference ("answer", "images[].path", "artifacts[]" ...)."""
        return result_fields(self.target())

    def streams_text(self) -> bool:
        """Whether `stream()` yields answer text (str pieces) before the result."""
        return type(self).stream is not Tool.stream

    def stream(self, **kwargs: Any) -> Iterator[Any]:
        """Text pieces, then the result. Default: the result only."""
        yield self.target()(**kwargs)

    def __call__(self, args: dict[str, Any] | None = None, context: ToolContext | None = None) -> Any:
        clean = validate_args(self.input_schema, args or {}, self.name)
        self.ensure_setup()
        fn = self.target()
        context = context or ToolContext()
        with self.slot(context), cancel_scope(context.cancel):
            if accepts_context(fn):
                return fn(**clean, context=context)
            return fn(**clean)

    def call_streaming(
        self, args: dict[str, Any] | None, context: ToolContext | None, emit: Callable[[str], None]
    ) -> Any:
        """Run through `stream()`, passing text pieces to `emit`; returns the result."""
        clean = validate_args(self.input_schema, args or {}, self.name)
        self.ensure_setup()
        value = None
        context = context or ToolContext()
        with self.slot(context), cancel_scope(context.cancel):
            for item in self.stream(**clean, context=context):
                if isinstance(item, str):
                    emit(item)
                else:
                    value = item
        if value is None:
            raise ToolError(f"{self.name} streamed no result")
        return value

    @contextlib.contextmanager
    def slot(self, context: ToolContext | None = None) -> Iterator[None]:
        """Hold one of `max_concurrency` run slots (waiting stays cancellable). Cancelling the
        context's `CancelToken` (the executor does at a timeout) frees the slot at once: the next
        call need not wait for the cancelled one to reach its next check."""
        if self.max_concurrency is None:
            yield
            return
        if self._slots is None:
            with self._setup_lock:
                if self._slots is None:
                    self._slots = threading.BoundedSemaphore(self.max_concurrency)
        while not self._slots.acquire(timeout=0.2):
            if context is not None:
                context.check_cancelled()
        release = _once(self._slots.release)
        token = context.cancel if context is not None else None
        forget = token.on_cancel(release) if isinstance(token, CancelToken) else (lambda: None)
        try:
            if context is not None:
                context.check_cancelled()  # cancelled while it waited: the slot is already back
            yield
        finally:
            forget()
            release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    """`fn`, run at most once however many threads call it."""
    lock, done = threading.Lock(), []

    def run() -> None:
        with lock:
            if done:
                return
            done.append(True)
        fn()

    return run


# -- results ----------------------------------------------------------------------------------


class ToolResult:
    """What the orchestrator reads from a result. Result dataclasses inherit it and override what
    they have (a field or a property of the same name); the defaults mean "succeeded, nothing to
    cite, no files". `provenance()` says where and when a reading came from (device, model, time)."""

    ok: bool = True
    error: str = ""
    citations: Sequence[Any] = ()
    artifacts: Sequence[Any] = ()  # file paths the result produced or found

    def summary(self) -> str:
        """One paragraph for the final answer."""
        return _plain_text(self)

    def provenance(self) -> dict[str, str]:
        return {}


@dataclass
class ResultView:
    """Any tool's result, read through the `ToolResult` protocol (plain values too)."""

    ok: bool
    error: str
    summary: str
    citations: list[Any]
    artifacts: list[str]
    provenance: dict[str, str]


def read_result(value: Any) -> ResultView:
    """The one reader of results: a `ToolResult` through its protocol; a plain value (a string, a
    dict, a LangChain tool's output) as a successful result whose summary is its text."""
    if isinstance(value, ToolResult):
        return ResultView(
            bool(value.ok),
            str(value.error or ""),
            str(value.summary()),
            list(value.citations or ()),
            [str(a) for a in (value.artifacts or ())],
            dict(value.provenance()),
        )
    return ResultView(True, "", value if isinstance(value, str) else _plain_text(value), [], [], {})


def _plain_text(value: Any, limit: int = 600) -> str:
    text = str(to_plain(value))
    return text if len(text) <= limit else text[:limit] + " ..."


def result_fields(fn: Callable[..., Any]) -> list[str]:
    """Fields of `fn`'s return type that a later step can reference ("answer", "images[].path",
    "labels[]", "artifacts[]", "summary"), from its type hints."""
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001 - unresolvable hints: nothing to offer
        return []
    if ret is None or not dataclasses.is_dataclass(ret):
        return []
    out: list[str] = []
    hints = typing.get_type_hints(ret)
    for f in dataclasses.fields(ret):
        tp = hints.get(f.name)
        if typing.get_origin(tp) is list:
            item = (typing.get_args(tp) or [None])[0]
            if dataclasses.is_dataclass(item):
                out += [f"{f.name}[].{g.name}" for g in dataclasses.fields(item) if g.name in ("path", "text", "label")]
            out.append(f"{f.name}[]")
        else:
            out.append(f.name)
    if issubclass(ret, ToolResult):
        out += [f for f in ("artifacts[]", "summary") if f not in out]
    return out


# -- arguments --------------------------------------------------------------------------------

MAIN_TEXT_ARGS = ("question", "query", "prompt", "text", "request", "q", "input", "message")
IMAGE_ARGS = ("image", "image_path", "path", "example")


def main_text_arg(tool: Tool) -> str | None:
    """The parameter that takes the request's text: a conventional name, else the first required string."""
    schema = tool.input_schema
    props = schema.get("properties", {})
    main = next((p for p in MAIN_TEXT_ARGS if p in props), None)
    return main or next(
        (p for p in schema.get("required", []) if props.get(p, {}).get("type") == "string" and p not in IMAGE_ARGS),
        None,
    )


def image_arg(tool: Tool) -> str | None:
    """The parameter that takes an image path, if any."""
    props = tool.input_schema.get("properties", {})
    return next((p for p in IMAGE_ARGS if p in props), None)


class FunctionTool(Tool):
    """A typed Python function as a tool: name from the function, description from its docstring."""

    def __init__(self, fn: Callable[..., Any], name: str = "", description: str = "") -> None:
        super().__init__()
        self._fn = fn
        self.name = name or fn.__name__
        doc = inspect.getdoc(fn) or ""
        self.description = description or doc.split("\n\n")[0].strip()

    def target(self) -> Callable[..., Any]:
        return self._fn

    def run(self, **kwargs: Any) -> Any:
        return self._fn(**kwargs)


class LangChainTool(Tool):
    """Wraps a LangChain `BaseTool`; its args schema becomes the input schema."""

    def __init__(self, tool: Any) -> None:
        super().__init__()
        self._tool = tool
        self.name = tool.name
        self.description = tool.description or ""

    @property
    def input_schema(self) -> dict[str, Any]:
        schema = dict(self._tool.get_input_schema().model_json_schema())
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema.setdefault("required", [])
        schema["additionalProperties"] = False
        return schema

    def __call__(self, args: dict[str, Any] | None = None, context: ToolContext | None = None) -> Any:
        clean = validate_args(self.input_schema, args or {}, self.name)
        if not _async_only(self._tool):
            return self._tool.invoke(clean)
        return _run_coroutine(self._tool.ainvoke(clean))


def _async_only(tool: Any) -> bool:
    """A LangChain tool built from a coroutine alone (`StructuredTool.from_function(coroutine=...)`,
    `@tool` on an `async def`): its `invoke` raises, only `ainvoke` works."""
    return getattr(tool, "func", "") is None and getattr(tool, "coroutine", None) is not None


def _run_coroutine(coro: Any) -> Any:
    """Run `coro` to completion from sync code: here when this thread has no event loop running (the
    executor's step threads), else on a thread of its own (a sync call from inside async code)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="langchain-ainvoke")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
