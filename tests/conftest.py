"""Shared fixtures. Tests never read ../shared/data: they write their own small documents."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep every test run off the user's real ~/.polymodal, but share the model cache (the joined LLM).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("polymodal-home")
    monkeypatch.setenv("POLYMODAL_HOME", str(home))
    monkeypatch.delenv("POLYMODAL_CONFIG", raising=False)
    yield home


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
