"""The cancel token: reasons, callbacks run once, the current token per thread."""

from __future__ import annotations

import threading

import pytest

from polymodal.cancel import CancelToken, cancel_scope, check_cancelled, current_token
from polymodal.errors import Cancelled


def test_cancel_runs_each_callback_once_and_keeps_the_first_reason():
    token, ran = CancelToken(), []
    token.on_cancel(lambda: ran.append("a"))
    forget = token.on_cancel(lambda: ran.append("b"))
    forget()
    assert not token.cancelled
    token.cancel("timed out after 2 s")
    token.cancel("cancelled by the user")
    assert ran == ["a"] and token.cancelled
    with pytest.raises(Cancelled, match="^timed out after 2 s$"):
        token.raise_if_cancelled()
    token.on_cancel(lambda: ran.append("late"))  # already cancelled: runs at once
    assert ran == ["a", "late"]


def test_the_current_token_belongs_to_the_thread_that_set_it():
    token = CancelToken()
    token.cancel()
    seen = []
    with cancel_scope(token):
        worker = threading.Thread(target=lambda: seen.append(current_token()))
        worker.start()
        worker.join()
        with pytest.raises(Cancelled):
            check_cancelled()
    assert seen == [None] and current_token() is None
    check_cancelled()  # outside a tool call: nothing to check
