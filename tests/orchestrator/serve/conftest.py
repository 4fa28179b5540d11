"""This folder's helpers (`serve_procs`, `serve_agents`) import by name, as the server subprocesses do."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_procs import start_serve  # noqa: E402, F401 - the fixture
