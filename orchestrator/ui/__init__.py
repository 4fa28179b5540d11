"""The Gradio app: the page (`page.build_app`), serving it (`server.serve/launch/warm_up`), and the
handlers behind it, plain functions over `AppServices` tested without a browser.

    from orchestrator.ui import build_app, serve
    demo = build_app(config, agent=fake_agent())    # tests inject an Agent over fake tools
    serve(demo, "127.0.0.1", 7860)

`app.py` at the repository root is the entry (`python app.py`). Importing this package starts
nothing and imports no gradio: `build_app()` imports it.
"""

from orchestrator.ui.chat import TurnView, chat_turn, media_messages
from orchestrator.ui.devices import device_rows, sensor_frame
from orchestrator.ui.fleet import FleetService
from orchestrator.ui.library import delete_documents, index_images, ingest_documents, list_documents, search_images
from orchestrator.ui.page import build_app
from orchestrator.ui.server import launch, serve, warm_up
from orchestrator.ui.services import (
    CHAT_CONCURRENCY,
    IMAGE_TYPES,
    AppServices,
    TabState,
    short_error,
)
from orchestrator.ui.settings import settings_report

__all__ = [
    "build_app",
    "launch",
    "serve",
    "warm_up",
    "AppServices",
    "TabState",
    "TurnView",
    "FleetService",
    "short_error",
    "chat_turn",
    "ingest_documents",
    "list_documents",
    "delete_documents",
    "index_images",
    "search_images",
    "device_rows",
    "settings_report",
    "sensor_frame",
    "media_messages",
    "IMAGE_TYPES",
    "CHAT_CONCURRENCY",
]
