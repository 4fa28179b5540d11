"""OpenTelemetry spans for a request: `polymodal.request` > `polymodal.plan`, `polymodal.step` (one per
plan step) > `polymodal.llm` (one per LLM call, from the backend's `GenerationStats`). A no-op when
`opentelemetry` is not installed (the `otel` extra); nothing is imported until the first span.

Spans go to the global tracer provider (as `opentelemetry-instrument` or your own code sets it), or
to the provider given to `use_tracer_provider` (tests, or an app that keeps its own).
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from typing import Any, Iterator, TypeVar

__all__ = [
    "span",
    "start_span",
    "annotate",
    "context_with",
    "attached",
    "iterate_in",
    "llm_call",
    "use_tracer_provider",
]

T = TypeVar("T")
_provider: Any = None
_available: bool | None = None


class _NoSpan:
    """Stands in for a span when OpenTelemetry is absent."""

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        return None

    def end(self, end_time: int | None = None) -> None:
        return None


NO_SPAN = _NoSpan()


def use_tracer_provider(provider: Any) -> None:
    """Send polymodal's spans to `provider` instead of the global one (None: back to the global)."""
    global _provider
    _provider = provider


def _tracer() -> Any:
    global _available
    if _available is None:
        _available = importlib.util.find_spec("opentelemetry") is not None
    if not _available:
        return None
    from opentelemetry import trace

    return (_provider or trace.get_tracer_provider()).get_tracer("polymodal")


def _attrs(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float (and lists of them); None is left out."""
    out = {}
    for key, value in attributes.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, (str, bool, int, float)) else str(value)
    return out


def annotate(target: Any, attributes: dict[str, Any]) -> None:
    """Set `attributes` on a span (None values are left out)."""
    target.set_attributes(_attrs(attributes))


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span around a block, current inside it (child spans nest under it)."""
    tracer = _tracer()
    if tracer is None:
        yield NO_SPAN
        return
    with tracer.start_as_current_span(name, attributes=_attrs(attributes)) as current:
        yield current


def start_span(name: str, context: Any = None, **attributes: Any) -> Any:
    """A span that is not made current: for a generator, whose steps may run in other threads or
    contexts; pass `context_with(it)` to the work under it and `end()` it yourself."""
    tracer = _tracer()
    if tracer is None:
        return NO_SPAN
    return tracer.start_span(name, context=context, attributes=_attrs(attributes))


def context_with(parent: Any) -> Any:
    """The context whose current span is `parent` (None without OpenTelemetry)."""
    if parent is NO_SPAN or _tracer() is None:
        return None
    from opentelemetry import trace

    return trace.set_span_in_context(parent)


@contextlib.contextmanager
def attached(context: Any) -> Iterator[None]:
    """Make `context` current in this thread for the block (e.g. a step's thread under its request)."""
    if context is None:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def iterate_in(context: Any, items: Iterator[T]) -> Iterator[T]:
    """`items`, each step of it run with `context` current (a generator that calls an LLM lazily)."""
    iterator = iter(items)
    while True:
        with attached(context):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def llm_call(model: str, stats: Any) -> None:
    """A finished LLM call as a span under the current one, timed back from its `GenerationStats`."""
    tracer = _tracer()
    if tracer is None:
        return
    now = time.time_ns()
    seconds = float(stats.prefill_s) + float(stats.decode_s)
    call = tracer.start_span(
        "polymodal.llm",
        start_time=now - int(seconds * 1e9),
        attributes=_attrs(
            {
                "llm.model": model,
                "llm.prompt_tokens": int(stats.prompt_tokens),
                "llm.completion_tokens": int(stats.completion_tokens),
                "llm.cached_prompt_tokens": int(stats.cached_prompt_tokens),
                "llm.prefill_s": float(stats.prefill_s),
                "llm.decode_s": float(stats.decode_s),
            }
        ),
    )
    call.end(end_time=now)
