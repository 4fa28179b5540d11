"""The `ray-serve` chat backend: the LLM that `polymodal serve-llm` deployed on a Ray cluster
(tools/llm/ray_serve.py), called through a Serve DeploymentHandle rather than HTTP; Serve sends each
call to a free replica. Ray is imported on first use.

    [llm]
    backend = "ray-serve"
    base_url = "10.0.0.5:6379"    # the Ray cluster; empty: $RAY_ADDRESS, else a new local cluster
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, TypeVar

from polymodal.cancel import check_cancelled
from polymodal.errors import ModelUnavailable, PolymodalError
from polymodal.lazy import load_once
from tools.llm.base import GenerationStats, Message, StatsRecorder

__all__ = ["DEFAULT_APP", "RayServeChatModel"]

DEFAULT_APP = "polymodal-llm"  # the Serve application `polymodal serve-llm` deploys

T = TypeVar("T")


class RayServeChatModel(StatsRecorder):
    """A chat model served by Ray Serve replicas, reached through the app's DeploymentHandle.

    Connects to the cluster at `address` (polymodal.cluster.connect) on the first call. A reply not
    back within `timeout_s` is a `ModelUnavailable`, as is a missing app; an error the replica's
    model raises (a bad message, a missing model file) comes back as that error, on one line."""

    def __init__(self, address: str = "auto", app: str = DEFAULT_APP, *, timeout_s: float = 120.0, name: str = ""):
        self.address = address or "auto"
        self.app = app
        self.timeout_s = timeout_s
        self.name = name or f"ray-serve:{app}"

    @classmethod
    def from_config(cls, cfg: Any, cache_dir: Any = None) -> "RayServeChatModel":
        """`[llm] base_url` is the Ray cluster's address; `timeout_s` bounds each reply."""
        return cls(cfg.base_url or "auto", timeout_s=cfg.timeout_s)

    @load_once
    def handle(self) -> Any:
        """The app's DeploymentHandle (connecting this process to the cluster first)."""
        from polymodal.cluster import connect

        connect(self.address)
        from ray import serve
        from ray.serve.exceptions import RayServeException

        try:
            return serve.get_app_handle(self.app)
        except RayServeException:
            raise ModelUnavailable(
                f"no LLM application '{self.app}' on the Ray cluster at {self.address}: "
                "start one with polymodal serve-llm --ray ADDRESS"
            ) from None

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> str:
        options = _options(max_tokens, temperature, json_schema, stop)
        t0 = time.perf_counter()
        call = lambda: self.handle.generate.remote(list(messages), options).result(timeout_s=self.timeout_s)  # noqa: E731
        out = self._mapped(call)
        stats = out.get("stats")
        self.record_stats(GenerationStats(**stats) if stats else GenerationStats(decode_s=time.perf_counter() - t0))
        return str(out["text"])

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        options = _options(max_tokens, temperature, json_schema, stop)
        t0 = time.perf_counter()
        pieces = self._mapped(lambda: self.handle.options(stream=True).stream.remote(list(messages), options))
        t_first, n, finished = None, 0, False
        try:
            while True:
                piece = self._mapped(lambda: next(pieces, None))
                if piece is None:
                    break
                check_cancelled()  # the step's token (polymodal.cancel): stop between tokens
                t_first = t_first or time.perf_counter()
                n += 1
                yield piece
            finished = True
        finally:
            if not finished:
                pieces.cancel()  # the consumer left: the replica stops and takes the next request
        t_end = time.perf_counter()
        t_first = t_first or t_end
        self.record_stats(GenerationStats(completion_tokens=n, prefill_s=t_first - t0, decode_s=t_end - t_first))

    def _mapped(self, call: Callable[[], T]) -> T:
        """`call()`, with Ray's errors as polymodal's, each on one line."""
        from ray.exceptions import RayError, RayTaskError
        from ray.serve.exceptions import RayServeException

        try:
            return call()
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, PolymodalError):
                raise cause from None
            raise ModelUnavailable(f"the LLM on Ray Serve failed: {_first_line(cause or exc)}") from None
        except TimeoutError:
            raise ModelUnavailable(f"the LLM on Ray Serve did not answer within {self.timeout_s:.0f}s") from None
        except (RayError, RayServeException) as exc:
            raise ModelUnavailable(f"the LLM on Ray Serve is unavailable: {_first_line(exc)}") from None


def _options(max_tokens: int, temperature: float, json_schema: dict | None, stop: list[str] | None) -> dict:
    return {"max_tokens": max_tokens, "temperature": temperature, "json_schema": json_schema, "stop": stop}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
