"""Concurrent chat sessions through the page's API (gradio_client): none loses a turn, none sees
another's history or files, though every session attaches a file of the same name. The bench
`python -m bench app_load` runs the same check at scale beside the devices' load."""

from __future__ import annotations

from bench.app_load import check_sessions, make_sessions, run_chats
from orchestrator.testing import fake_agent


def test_concurrent_sessions_keep_their_own_history_and_files(config, serve_app, tmp_path):
    url, demo = serve_app(config, fake_agent())
    sessions = run_chats(url, make_sessions(3, 2, tmp_path))
    assert check_sessions(sessions, demo.services.uploads) == []
    assert len(list(demo.services.uploads.rglob("photo.png"))) == 3  # one copy each, none overwritten
