"""The page: the Gradio Blocks of the whole app (chat, knowledge base, image library, devices,
settings), each tab wiring its components to the plain handlers of this package.

gradio is imported inside `build_app()`, so importing this module stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from orchestrator.ui.chat import chat_turn
from orchestrator.ui.devices import device_rows, sensor_frame
from orchestrator.ui.library import (
    delete_documents,
    doc_types,
    index_images,
    ingest_documents,
    list_documents,
    search_images,
)
from orchestrator.ui.services import CHAT_CONCURRENCY, IMAGE_TYPES, AppServices, TabState, short_error
from orchestrator.ui.settings import settings_report
from polymodal.config import Config, load_config

__all__ = ["build_app", "CSS", "PAGE_ONLY"]

# Every event of the page is an HTTP endpoint. Only the chat and the read-only image search are part
# of the public API (gradio_client, /gradio_api/info); the rest (ingest, delete, index, the fleet,
# refreshes) stay private to the page. Auth, when set, guards everything; server folders are
# further limited to [app] ingest_roots (AppServices.server_folder).
# Every event goes through the queue (/queue/join): gradio's direct route for queue=False events,
# /run/<name>, is closed to all but the public names (server.PublicEventsOnly). Each event keeps its
# own concurrency group, so Stop and New chat never wait behind a running chat.
PAGE_ONLY: dict[str, Any] = {"api_visibility": "private"}

CSS = """
.pm-status {min-height: 1.5em}
footer {display: none !important}
"""


def _files_of(message: Any) -> list[str]:
    files = (message or {}).get("files") or [] if isinstance(message, dict) else []
    return [f if isinstance(f, str) else f.get("path", "") for f in files if f]


def _folder_hint(services: AppServices) -> str:
    roots = services.config.app.ingest_roots
    return f"a folder under {', '.join(roots)}" if roots else "none: set [app] ingest_roots in the config first"


def build_app(config: Config | None = None, agent: Any = None, services: AppServices | None = None):
    """The Blocks of the whole page. Nothing loads here: the Agent is built on the first message
    (unless one is given), the fleet starts from its button."""
    config = config if config is not None else load_config()
    services = services or AppServices(config, agent)
    # Uploads land in gradio's temp folder: point it inside the app's data folder (read by each
    # component as it is built, so this must come first).
    os.environ["GRADIO_TEMP_DIR"] = str(services.cache)
    import gradio as gr

    # delete_cache: gradio's copies of uploads and our thumbnails go after a day (they are rebuilt on demand)
    with gr.Blocks(title="polymodal", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        demo.services = services  # type: ignore[attr-defined]
        tab = gr.State(TabState())
        gr.Markdown("## polymodal — documents, photos, generation and devices, from one chat")
        with gr.Tabs():
            _chat_tab(gr, services, tab)
            _kb_tab(gr, services, tab)
            _images_tab(gr, services, tab)
            _devices_tab(gr, services)
            _settings_tab(gr, services)
    return demo


def _chat_tab(gr: Any, services: AppServices, tab: Any) -> None:
    with gr.Tab("Chat", id="chat"):
        chatbot = gr.Chatbot(
            label="Conversation",
            height=560,
            elem_id="chat",
            buttons=["copy"],
            placeholder="Ask about your documents, find or generate a picture, or ask a device.",
        )
        with gr.Row():
            box = gr.MultimodalTextbox(
                placeholder="Type a message; attach or paste an image…",
                file_count="single",
                file_types=list(IMAGE_TYPES),
                sources=["upload"],
                show_label=False,
                scale=8,
                elem_id="chat-input",
            )
            stop = gr.Button("Stop", variant="stop", scale=1, min_width=80, elem_id="chat-stop")
            new = gr.Button("New chat", scale=1, min_width=80, elem_id="chat-new")
        with gr.Accordion("Camera or pasted image", open=False):
            camera = gr.Image(
                sources=["webcam", "clipboard", "upload"],
                type="filepath",
                height=220,
                label="Sent with the next message",
            )

        def respond(state: TabState, message: dict, cam: str | None):
            files = _files_of(message)
            image = files[0] if files else cam
            msgs = list(state.messages)
            for msgs in chat_turn(services, state, (message or {}).get("text", ""), image):
                yield state, msgs, gr.MultimodalTextbox(value=None, interactive=False), gr.update()
            yield state, msgs, gr.MultimodalTextbox(value=None, interactive=True), None

        box.submit(
            respond,
            [tab, box, camera],
            [tab, chatbot, box, camera],
            concurrency_limit=CHAT_CONCURRENCY,
            concurrency_id="chat",
            show_progress="hidden",
            api_name="chat",
        )

        def on_stop(state: TabState):
            state.cancel("chat")
            return state, gr.MultimodalTextbox(interactive=True)

        # No `cancels=`: killing the event would leave the chat half-drawn with an error badge; the
        # flag makes the turn end itself with a "Cancelled." line at once (see _pump).
        stop.click(on_stop, [tab], [tab, box], **PAGE_ONLY)

        def on_new(state: TabState):
            state.cancel("chat")
            fresh = TabState(cancels=state.cancels)
            return fresh, []

        new.click(on_new, [tab], [tab, chatbot], **PAGE_ONLY)
        chatbot.clear(on_new, [tab], [tab, chatbot], **PAGE_ONLY)  # the bin icon starts a new conversation too


def _kb_tab(gr: Any, services: AppServices, tab: Any) -> None:
    with gr.Tab("Knowledge base", id="kb") as kb_tab:
        with gr.Row():
            files = gr.File(
                file_count="multiple",
                file_types=list(doc_types()),
                label="Upload documents",
                height=140,
                elem_id="kb-files",
            )
            with gr.Column():
                folder = gr.Textbox(label="…or a folder on this machine", placeholder=_folder_hint(services))
                with gr.Row():
                    go = gr.Button("Ingest", variant="primary", elem_id="kb-ingest")
                    cancel = gr.Button("Cancel", elem_id="kb-cancel")
        status = gr.Markdown(elem_classes="pm-status", elem_id="kb-status")
        report = gr.Dataframe(
            headers=["file", "status", "chunks", "reason"], label="Per-file summary", interactive=False, wrap=True
        )
        gr.Markdown("### Documents")
        docs = gr.Dataframe(
            headers=["document", "type", "chunks", "chars", "added"], interactive=False, wrap=True, elem_id="kb-docs"
        )
        with gr.Row():
            pick = gr.Dropdown(label="Select documents to delete", multiselect=True, choices=[], scale=4)
            delete = gr.Button("Delete selected", variant="stop", scale=1)
            refresh = gr.Button("Refresh", scale=1)

        def docs_out(note: str = ""):
            try:
                rows = list_documents(services)
            except Exception as exc:  # noqa: BLE001
                return [], gr.Dropdown(choices=[], value=[]), f"⚠ {short_error(exc)}"
            return rows, gr.Dropdown(choices=[r[0] for r in rows], value=[]), note

        def run(state: TabState, uploaded: list[str] | None, path: str, bar=gr.Progress()):
            cancel_ev = state.new_cancel("kb")
            rows: list = []
            try:
                for line, rows in ingest_documents(services, uploaded, path, cancel_ev, lambda f, m: bar(f, desc=m)):
                    yield state, f"… {line}", rows, gr.update(), gr.update()
                d, p, _ = docs_out()
                yield state, f"✓ {line}", rows, d, p
            except Exception as exc:  # noqa: BLE001 - a short message, never a trace
                d, p, _ = docs_out()
                yield state, f"⚠ {short_error(exc)}", rows, d, p

        def uploaded(paths: list[str] | None):
            names = [Path(p).name for p in paths or []]
            return f"{len(names)} file(s) uploaded, ready to ingest: {', '.join(names)}" if names else ""

        # The upload event's own answer: the files are on the server (tests wait on it, not on time).
        files.upload(uploaded, [files], [status], show_progress="hidden", **PAGE_ONLY)
        go.click(
            run,
            [tab, files, folder],
            [tab, status, report, docs, pick],
            concurrency_limit=1,
            concurrency_id="kb-write",
            **PAGE_ONLY,
        )
        cancel.click(lambda s: (s.cancel("kb"), s)[1], [tab], [tab], **PAGE_ONLY)

        def remove(ids: list[str]):
            try:
                n = delete_documents(services, ids)
                d, p, _ = docs_out()
                return f"Deleted {n} document(s).", d, p
            except Exception as exc:  # noqa: BLE001
                d, p, _ = docs_out()
                return f"⚠ {short_error(exc)}", d, p

        delete.click(remove, [pick], [status, docs, pick], concurrency_id="kb-write", **PAGE_ONLY)
        refresh.click(lambda: docs_out()[:2], None, [docs, pick], **PAGE_ONLY)
        kb_tab.select(lambda: docs_out()[:2], None, [docs, pick], **PAGE_ONLY)


def _images_tab(gr: Any, services: AppServices, tab: Any) -> None:
    with gr.Tab("Image library", id="images"):
        with gr.Row():
            folder = gr.Textbox(
                label="Index a folder of photos", placeholder=_folder_hint(services), scale=4, elem_id="img-folder"
            )
            go = gr.Button("Index", variant="primary", scale=1, elem_id="img-index")
            cancel = gr.Button("Cancel", scale=1)
        status = gr.Markdown(elem_classes="pm-status", elem_id="img-status")
        with gr.Accordion("Per-file summary", open=False):
            report = gr.Dataframe(headers=["file", "status", "reason"], interactive=False, wrap=True)
        gr.Markdown("### Search")
        with gr.Row():
            with gr.Column(scale=3):
                query = gr.Textbox(
                    label="What the photo shows", placeholder="a cat sleeping / 一只猫", elem_id="img-query"
                )
                k = gr.Slider(1, 24, value=8, step=1, label="How many")
                with gr.Row():
                    date_from = gr.Textbox(label="Taken from", placeholder="YYYY-MM-DD", elem_id="img-from")
                    date_to = gr.Textbox(label="Taken until", placeholder="YYYY-MM-DD", elem_id="img-to")
                    faces = gr.Radio(["any", "with", "without"], value="any", label="Faces", elem_id="img-faces")
                search = gr.Button("Search", variant="primary", elem_id="img-search")
            example = gr.Image(
                label="…or search by an example image",
                type="filepath",
                scale=2,
                height=200,
                sources=["upload", "clipboard", "webcam"],
                elem_id="img-example",
            )
        found = gr.Markdown(elem_classes="pm-status", elem_id="img-found")
        gallery = gr.Gallery(label="Results", columns=4, height="auto", object_fit="contain", elem_id="img-gallery")

        def run(state: TabState, path: str, bar=gr.Progress()):
            cancel_ev = state.new_cancel("images")
            rows: list = []
            try:
                for line, rows in index_images(services, path, cancel_ev, lambda f, m: bar(f, desc=m)):
                    yield state, f"… {line}", rows
                yield state, f"✓ {line}", rows
            except Exception as exc:  # noqa: BLE001
                yield state, f"⚠ {short_error(exc)}", rows

        go.click(
            run, [tab, folder], [tab, status, report], concurrency_limit=1, concurrency_id="images-write", **PAGE_ONLY
        )
        cancel.click(lambda s: (s.cancel("images"), s)[1], [tab], [tab], **PAGE_ONLY)

        def find(text: str, image: str | None, n: float, start: str, end: str, who: str):
            try:
                items, line = search_images(services, text, image, int(n), start, end, who)
                return items, line
            except Exception as exc:  # noqa: BLE001
                return [], f"⚠ {short_error(exc)}"

        inputs = [query, example, k, date_from, date_to, faces]
        read = {"concurrency_limit": 2, "concurrency_id": "images-read"}
        search.click(find, inputs, [gallery, found], api_name="search_images", **read)
        query.submit(find, inputs, [gallery, found], **read, **PAGE_ONLY)


def _devices_tab(gr: Any, services: AppServices) -> None:
    with gr.Tab("Devices", id="devices") as dev_tab:
        with gr.Row():
            start = gr.Button("Start simulated fleet", variant="primary", elem_id="fleet-start")
            stop = gr.Button("Stop simulated fleet", variant="stop", elem_id="fleet-stop")
            refresh = gr.Button("Refresh", elem_id="dev-refresh")
            live = gr.Checkbox(label="Live (every 3 s)", value=False)
        status = gr.Markdown(elem_classes="pm-status", elem_id="dev-status")
        table = gr.Dataframe(
            headers=["device", "name", "state", "last seen", "capabilities", "location"],
            interactive=False,
            wrap=True,
            elem_id="dev-table",
        )
        plot = gr.LinePlot(
            x="seconds",
            y="value",
            color="series",
            title="Latest sensor readings",
            height=260,
            x_title="seconds before now",
            y_title="value",
            elem_id="dev-plot",
        )
        timer = gr.Timer(3.0, active=False)

        def snapshot(note: str = ""):
            try:
                rows, line = device_rows(services)
                frame = sensor_frame(services)
            except Exception as exc:  # noqa: BLE001
                return f"⚠ {short_error(exc)}", [], gr.update()
            # An empty frame would fix the plot's colour scale to no series (no lines ever after): clear it.
            return (f"{note} · {line}" if note else line), rows, (frame if len(frame) else None)

        def do(action: Callable[[], str]):
            try:
                note = action()
            except Exception as exc:  # noqa: BLE001
                return f"⚠ {short_error(exc)}", gr.update(), gr.update()
            return snapshot(note)

        fleet = {"concurrency_id": "fleet", "concurrency_limit": 1, **PAGE_ONLY}
        start.click(lambda: do(services.fleet.start), None, [status, table, plot], **fleet)
        stop.click(lambda: do(services.fleet.stop), None, [status, table, plot], **fleet)
        refresh.click(snapshot, None, [status, table, plot], **PAGE_ONLY)
        dev_tab.select(snapshot, None, [status, table, plot], **PAGE_ONLY)
        live.change(lambda on: gr.Timer(active=bool(on)), [live], [timer], **PAGE_ONLY)
        timer.tick(snapshot, None, [status, table, plot], show_progress="hidden", **PAGE_ONLY)


def _settings_tab(gr: Any, services: AppServices) -> None:
    with gr.Tab("Settings", id="settings") as tab:
        refresh = gr.Button("Refresh", size="sm")
        report = gr.Markdown(elem_id="settings-report")

        def show():
            try:
                return settings_report(services)
            except Exception as exc:  # noqa: BLE001
                return f"⚠ {short_error(exc)}"

        tab.select(show, None, [report], **PAGE_ONLY)
        refresh.click(show, None, [report], **PAGE_ONLY)
