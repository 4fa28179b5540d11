"""Serving the page: `serve()` queues and launches built Blocks, `launch()` builds and serves from
the config, `warm_up()` loads the models in the background once the page is up."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from orchestrator.ui.page import CSS, build_app
from orchestrator.ui.services import AppServices, short_error
from polymodal.config import Config, load_config

__all__ = ["launch", "serve", "warm_up", "PublicEventsOnly"]

log = logging.getLogger("polymodal.app")


# gradio's by-name routes (/gradio_api/call/<name>, /call/v2/<name>, /run/<name>, /api/<name>) run any
# event, whatever its api_visibility; the page itself calls its events through /queue/join.
_BY_NAME = re.compile(r"/gradio_api/(?:call/v2|call|run|api)/(?P<name>[^/]+)")


class PublicEventsOnly:
    """ASGI middleware: the by-name routes answer 404 for every event but the public ones."""

    def __init__(self, app: Any, public: set[str]) -> None:
        self.app, self.public = app, frozenset(public)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        m = _BY_NAME.search(scope.get("path", "")) if scope["type"] == "http" else None
        if m is not None and m["name"] not in self.public:
            body = b'{"detail":"Not Found"}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def serve(
    demo: Any,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    share: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Queue and launch `demo`; returns the local URL (with `block=False` the server runs in a thread)."""
    from starlette.middleware import Middleware

    services: AppServices = demo.services
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility != "private"}
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        app_kwargs={"middleware": [Middleware(PublicEventsOnly, public=public)]},
        server_name=host,
        server_port=port,
        auth=auth,
        share=share,
        prevent_thread_lock=not block,
        max_file_size=f"{services.config.app.max_upload_mb}mb",
        allowed_paths=[str(services.cache)],
        show_error=False,
        quiet=quiet,
        inbrowser=False,
        css=CSS,
        footer_links=[],
    )
    return demo.local_url


def launch(
    config: Config | None = None,
    host: str | None = None,
    port: int | None = None,
    auth: tuple[str, str] | None = None,
    share: bool = False,
    block: bool = True,
) -> Any:
    """Build the page from `config` ([app] host and port unless given), serve it and warm the models up;
    returns the Blocks once closed (at once with `block=False`)."""
    config = config if config is not None else load_config()
    demo = build_app(config)
    serve(demo, host or config.app.host, port or config.app.port, auth=auth, share=share, block=False)
    warm_up(demo.services)
    if block:
        demo.block_thread()
    return demo


def warm_up(services: AppServices) -> threading.Thread:
    """Build the Agent and load the router's embedder and the LLM in the background, so the first
    message does not pay for them (the page is already served meanwhile)."""

    def work() -> None:
        try:
            agent = services.agent
            if callable(getattr(agent, "warm_up", None)):
                agent.warm_up()
        except Exception as exc:  # noqa: BLE001 - the first message will report the problem
            log.warning("warm-up failed: %s", short_error(exc))

    t = threading.Thread(target=work, name="app-warm-up", daemon=True)
    t.start()
    return t
