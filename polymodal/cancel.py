"""Cooperative cancellation: a `CancelToken` that long work checks between units of work (a
retrieval, a token, a diffusion step, a device request), and the token of the step running now.

    token = CancelToken()
    with cancel_scope(token):        # the executor's step thread (tools.base.Tool.__call__)
        ...; check_cancelled()       # deep code (an LLM backend) checks without a context argument
    token.cancel("timed out after 30 s")   # from another thread: the work stops at its next check
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Callable, Iterator

from polymodal.errors import Cancelled

__all__ = ["CancelToken", "cancel_scope", "check_cancelled", "current_token"]


class CancelToken(threading.Event):
    """An event (set = cancelled) with the reason, and callbacks run once when it is cancelled
    (the executor's timeout frees a tool's concurrency slot through one)."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "cancelled by the user"
        self._callbacks: list[Callable[[], None]] = []
        self._guard = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self.is_set()

    def cancel(self, reason: str = "") -> None:
        if reason and not self.is_set():
            self.reason = reason
        self.set()

    def set(self) -> None:
        super().set()
        with self._guard:
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn()

    def raise_if_cancelled(self) -> None:
        if self.is_set():
            raise Cancelled(self.reason)

    def on_cancel(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run `fn` when the token is cancelled (now, if it already is); returns a function that
        unregisters it."""
        with self._guard:
            if not self.is_set():
                self._callbacks.append(fn)
                return lambda: self._forget(fn)
        fn()
        return lambda: None

    def _forget(self, fn: Callable[[], None]) -> None:
        with self._guard:
            if fn in self._callbacks:
                self._callbacks.remove(fn)


_current: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("polymodal_cancel", default=None)


def current_token() -> threading.Event | None:
    """The cancel token of the work running in this thread (None outside a tool call)."""
    return _current.get()


@contextlib.contextmanager
def cancel_scope(token: threading.Event | None) -> Iterator[None]:
    """Make `token` the current one for the block (a plain `threading.Event` works too)."""
    reset = _current.set(token)
    try:
        yield
    finally:
        _current.reset(reset)


def check_cancelled() -> None:
    """Raise `Cancelled` when the current work's token is set; a no-op outside a tool call."""
    token = _current.get()
    if token is not None and token.is_set():
        raise Cancelled(getattr(token, "reason", "cancelled by the user"))
