"""The app's handlers without a browser: chat turns over fake tools, uploads, the knowledge base,
the image library, devices without a broker, settings, per-tool limits, and `import app` staying light."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator import ui
from orchestrator.testing import BrokenGenerateTool, FakeEdgeQueryTool, FakeGenerateTool, FakeRagTool, fake_agent
from polymodal.errors import Cancelled, InputError
from tools.base import Tool, ToolContext

REPO = Path(__file__).resolve().parents[2]


def run_turn(services, tab, text, image=None):
    msgs = None
    for msgs in ui.chat_turn(services, tab, text, image):
        pass
    return msgs


def text_of(msgs) -> str:
    return (
        "\n".join(m["content"] if isinstance(m["content"], str) else "" for m in msgs)
        + "\n"
        + "\n".join(m.get("metadata", {}).get("title", "") for m in msgs)
    )


def test_import_app_starts_nothing_and_stays_light():
    code = (
        "import sys, threading, app; "
        "heavy = [m for m in ('gradio', 'torch', 'transformers') if m in sys.modules]; "
        "print(heavy, threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] 1"


def test_chat_turn_streams_plan_answer_and_expandable_citations(config):
    services = ui.AppServices(config, fake_agent())
    tab = ui.TabState()
    snapshots = list(ui.chat_turn(services, tab, "What is edge AI according to my documents?"))
    assert len(snapshots) >= 3  # the question first, then updates as events arrive
    first = snapshots[0]
    assert first[0] == {"role": "user", "content": "What is edge AI according to my documents?"}
    final = snapshots[-1]
    plan = next(m for m in final if m.get("metadata", {}).get("title", "").startswith("Plan"))
    assert plan["metadata"]["status"] == "done" and "rag_answer" in plan["content"] and "✓" in plan["content"]
    assert "duration" in plan["metadata"]
    answer = next(m for m in final if m["role"] == "assistant" and "metadata" not in m)
    assert answer["content"].startswith("Answer about What is edge AI") and "[1]" in answer["content"]
    sources = next(m for m in final if m.get("metadata", {}).get("title") == "Sources (1)")
    cite = next(m for m in final if m.get("metadata", {}).get("parent_id") == sources["metadata"]["id"])
    assert cite["metadata"]["title"] == "[1] edge-ai.md § Edge AI > Deployment"  # where in the file
    assert "kb/edge-ai.md" in cite["content"] and "> A passage about What is edge AI" in cite["content"]
    assert "§ Edge AI > Deployment (characters 120–220)" in cite["content"]
    assert tab.messages == final and len(tab.conversation.turns) == 1


def test_each_tab_keeps_its_own_conversation(config):
    services = ui.AppServices(config, fake_agent())
    a, b = ui.TabState(), ui.TabState()
    run_turn(services, a, "draw a lighthouse at dusk")
    run_turn(services, b, "what does the garden camera see?")
    run_turn(services, a, "make it bluer")
    assert [t.request for t in a.conversation.turns] == ["draw a lighthouse at dusk", "make it bluer"]
    assert [t.request for t in b.conversation.turns] == ["what does the garden camera see?"]
    assert a.conversation.turns[1].plan["steps"][0]["tool"] == "generate_image"  # the follow-up saw a's history
    assert "make it bluer" not in text_of(b.messages)


def test_tool_failure_is_a_short_message_never_a_trace(config):
    agent = fake_agent(tools=[FakeRagTool(), BrokenGenerateTool()])
    msgs = run_turn(ui.AppServices(config, agent), ui.TabState(), "draw a picture of a red fox on a frozen lake")
    text = text_of(msgs)
    assert "no diffusion weights configured" in text
    assert "Traceback" not in text and 'File "' not in text


class ExplodingAgent:
    tools: dict = {}

    def conversation(self):
        raise RuntimeError("internal detail that must not reach the page")


def test_programming_error_is_logged_not_shown(config, caplog):
    msgs = run_turn(ui.AppServices(config, ExplodingAgent()), ui.TabState(), "hello")
    assert msgs[-1]["content"] == "⚠ Something went wrong (RuntimeError); the details are in the server log."
    assert "internal detail" not in text_of(msgs)
    assert "internal detail" in caplog.text


def test_stop_cancels_a_long_generation(config):
    gen = FakeGenerateTool(steps=200, step_seconds=0.02)
    services = ui.AppServices(config, fake_agent(tools=[gen]))
    tab = ui.TabState()
    seen: list = []

    def chat():
        for msgs in ui.chat_turn(services, tab, "draw a picture of a red fox on a frozen lake"):
            seen.append(msgs)

    t = threading.Thread(target=chat)
    t.start()
    deadline = time.monotonic() + 30
    while not any("step " in text_of(m) for m in seen) and time.monotonic() < deadline:
        time.sleep(0.01)
    tab.cancel("chat")
    t.join(30)
    assert not t.is_alive()
    final = text_of(seen[-1])
    assert "Cancelled." in final
    assert "step 200/200" not in final


def test_tool_limits_bound_concurrency_and_keep_the_schema(config):
    class Slow(Tool):
        name = "generate_image"
        description = "slow"
        max_concurrency = 1  # the contract: every caller (the app's users, the CLI, the API) shares the limit
        active = 0
        peak = 0
        lock = threading.Lock()

        def run(self, prompt: str, seed: int = 0, *, context: ToolContext | None = None) -> str:
            with self.lock:
                Slow.active += 1
                Slow.peak = max(Slow.peak, Slow.active)
            if prompt == "hold":
                release.wait(10)
            else:
                time.sleep(0.1)
            with self.lock:
                Slow.active -= 1
            return prompt

    release = threading.Event()
    tool = Slow()
    schema = tool.input_schema
    fake_agent(tools=[tool])
    assert tool.input_schema == schema
    threads = [threading.Thread(target=tool, args=({"prompt": f"p{i}"},)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Slow.peak == 1
    # a run waiting for its turn can still be cancelled
    ctx = ToolContext()
    ctx.cancel.set()
    holder = threading.Thread(target=tool, args=({"prompt": "hold"},))
    holder.start()
    while Slow.active == 0:
        time.sleep(0.01)
    with pytest.raises(Cancelled):
        tool({"prompt": "waiting"}, ctx)
    release.set()
    holder.join()


def test_uploads_are_checked_and_kept_in_the_data_folder(config, tmp_path):
    services = ui.AppServices(config)
    ok = tmp_path / "notes v1.md"
    ok.write_text("# Notes\nedge AI runs models on devices")
    stored = services.accept_upload(ok, (".md",), "kb")
    assert stored.parent == Path(config.paths.data_dir) / "app" / "uploads" / "kb"
    assert stored.name == "notes_v1.md" and stored.read_text() == ok.read_text()
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ")
    with pytest.raises(InputError, match="not accepted"):
        services.accept_upload(bad, (".md",), "kb")
    config.app.max_upload_mb = 1
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * (2 * 2**20))
    with pytest.raises(InputError, match="upload limit is 1 MB"):
        services.accept_upload(big, (".md",), "kb")


def test_knowledge_base_ingest_list_delete(config, tmp_path):
    config.app.ingest_roots = [str(tmp_path)]
    services = ui.AppServices(config)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "edge.md").write_text("# Edge AI\nEdge AI runs small models on devices near the sensors.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    upload = tmp_path / "upload.txt"
    upload.write_text("Uploaded notes about federated learning on phones.")
    exe = tmp_path / "virus.exe"
    exe.write_bytes(b"MZ")
    reports: list[tuple[float, str]] = []
    steps = list(
        ui.ingest_documents(
            services, [str(upload), str(exe)], str(folder), progress=lambda f, m: reports.append((f, m))
        )
    )
    assert reports and all(0.0 <= f <= 1.0 for f, _ in reports)
    assert reports[-1][1].endswith("(last stored: upload.txt)") or reports[-1][1].endswith("(last stored: edge.md)")
    status, rows = steps[-1]
    assert "2 added" in status and "1 skipped" in status
    by_name = {Path(r[0]).name: r for r in rows}
    assert by_name["virus.exe"][1] == "skipped" and "not accepted" in by_name["virus.exe"][3]
    assert by_name["broken.pdf"][1] == "skipped" and by_name["broken.pdf"][3]
    assert by_name["edge.md"][1] == "added" and by_name["edge.md"][2] >= 1
    assert by_name["upload.txt"][1] == "added"
    docs = ui.list_documents(services)
    ids = sorted(Path(d[0]).name for d in docs)
    assert ids == ["edge.md", "upload.txt"]
    uploaded_id = next(d[0] for d in docs if d[0].endswith("upload.txt"))
    assert uploaded_id.startswith(str(services.uploads))
    assert ui.delete_documents(services, [uploaded_id]) == 1
    assert not Path(uploaded_id).exists()  # the uploaded copy goes with its document
    assert (folder / "edge.md").exists()
    assert [Path(d[0]).name for d in ui.list_documents(services)] == ["edge.md"]
    with pytest.raises(InputError):
        list(ui.ingest_documents(services, [], "  "))
    with pytest.raises(InputError, match="not a folder"):
        list(ui.ingest_documents(services, [], str(tmp_path / "missing")))


def test_ingest_cancel_keeps_what_was_stored(config, tmp_path):
    config.app.ingest_roots = [str(tmp_path)]
    services = ui.AppServices(config)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"doc{i:02d}.md").write_text(f"# Doc {i}\n" + "edge devices and sensors " * 120)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="already stored are kept"):
        list(ui.ingest_documents(services, [], str(folder), cancel))
    n = len(ui.list_documents(services))
    assert 0 < n < 40


def test_image_library_index_and_search_by_example(config, photo_folder, cat_photo):
    config.app.ingest_roots = [str(photo_folder)]
    services = ui.AppServices(config)
    with pytest.raises(InputError, match="empty"):
        ui.search_images(services, "a cat", None)
    (photo_folder.parent / "not-a-photo").mkdir(exist_ok=True)
    steps = list(ui.index_images(services, str(photo_folder)))
    status, rows = steps[-1]
    assert status.startswith(f"{len(list(photo_folder.iterdir()))} added")
    gallery, line = ui.search_images(services, "", str(cat_photo), k=3)
    assert len(gallery) == 3 and line == "3 photo(s) for the example image · encoder fake-colour"
    caption = gallery[0][1]
    assert caption.startswith("chelsea.png · score ") and caption.endswith(str(photo_folder / "chelsea.png"))
    assert Path(gallery[0][0]).is_relative_to(services.cache)  # only the app's cache is served
    with pytest.raises(InputError):
        ui.search_images(services, "", None)


def test_image_indexing_can_be_cancelled(config, photo_folder):
    config.app.ingest_roots = [str(photo_folder)]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="indexing cancelled"):
        list(ui.index_images(ui.AppServices(config), str(photo_folder), cancel))


def test_media_messages_gallery_generation_and_device_frame(config, photo_folder):
    import base64

    from orchestrator.events import StepResult
    from orchestrator.testing import FakeGenerateResult, FakeImageHit, FakeImageResult, FakeReading

    services = ui.AppServices(config)
    hits = FakeImageResult("cat", [FakeImageHit(str(photo_folder / "chelsea.png"), 0.91)])
    msgs = ui.media_messages(StepResult(1, "image_search", True, value=hits), services)
    gallery = msgs[0]["content"]
    assert type(gallery).__name__ == "Gallery"
    ((path, caption),) = [(str(i[0]), i[1]) for i in gallery.constructor_args["value"]]
    assert caption == f"chelsea.png · score 0.910 · {photo_folder / 'chelsea.png'}"
    gen = FakeGenerateResult("a red fox", 7, [str(photo_folder / "rocket.png")])
    msgs = ui.media_messages(StepResult(2, "generate_image", True, value=gen), services)
    texts = [m["content"] for m in msgs if isinstance(m["content"], str)]
    assert any("prompt=a red fox" in t and "seed=7" in t for t in texts)
    frame = base64.b64encode((photo_folder / "coffee.png").read_bytes()).decode()
    reading = FakeReading(
        "garden-cam", "snapshot", "none", "2026-01-01T12:00:00Z", {"image_b64": frame, "source": "coffee"}
    )
    msgs = ui.media_messages(StepResult(3, "edge_query", True, value=reading), services)
    assert "garden-cam" in msgs[0]["content"] and "2026-01-01T12:00:00Z" in msgs[0]["content"]
    assert Path(msgs[1]["content"]["path"]).read_bytes() == (photo_folder / "coffee.png").read_bytes()


def test_devices_without_a_broker_say_so(config):
    rows, line = ui.device_rows(ui.AppServices(config))
    assert rows == [] and line.startswith("No broker reachable")
    assert "no simulated fleet" in ui.AppServices(config).fleet.stop()


def test_settings_report_lists_roles_tools_doctor_and_memory(config):
    services = ui.AppServices(config, fake_agent(tools=[FakeRagTool(), FakeEdgeQueryTool()]))
    report = ui.settings_report(services)
    for part in ("### Models", "| llm |", "### Tools", "`rag_answer`", "### Doctor", "### Memory", "resident memory"):
        assert part in report
    assert f"127.0.0.1:{config.edge.port}" in report  # the broker check names the configured port


def test_build_app_sets_the_upload_folder_inside_the_data_folder(config):
    import os

    demo = ui.build_app(config, agent=fake_agent())
    assert os.environ["GRADIO_TEMP_DIR"] == str(Path(config.paths.data_dir) / "app" / "cache")
    assert demo.services.agent is not None


def test_generated_images_show_each_seed_and_the_parameters(config, photo_folder):
    from orchestrator.events import StepResult

    pytest.importorskip("tools.generate")
    from tools.generate import GenerateImageResult

    value = GenerateImageResult(
        prompt="the digit seven",
        negative_prompt="",
        model="digits-ddpm",
        pipeline="DDPM",
        steps=20,
        guidance=0.0,
        width=32,
        height=32,
        seeds=[3, 4],
        paths=[str(photo_folder / "rocket.png"), str(photo_folder / "coffee.png")],
        seconds=1.25,
        created="2026-01-01T00:00:00Z",
    )
    msgs = ui.media_messages(StepResult(1, "generate_image", True, value=value), ui.AppServices(config))
    captions = [c for _, c in msgs[0]["content"].constructor_args["value"]]
    assert captions[0].startswith("rocket.png · seed 3 · ") and captions[1].startswith("coffee.png · seed 4 · ")
    params = msgs[1]["content"]
    for part in ("prompt=the digit seven", "seeds=[3, 4]", "steps=20", "width=32", "model=digits-ddpm", "seconds=1.2"):
        assert part in params


def test_tool_limits_cover_streaming_tools(config):
    class Streamer(Tool):
        name = "rag_answer"
        description = "streams"
        max_concurrency = 1
        active = peak = 0
        lock = threading.Lock()

        def run(self, question: str) -> str:
            return "".join(p for p in self.stream(question) if isinstance(p, str))

        def stream(self, question: str, *, context: ToolContext | None = None):
            with self.lock:
                Streamer.active += 1
                Streamer.peak = max(Streamer.peak, Streamer.active)
            try:
                for piece in ("a", "b"):
                    time.sleep(0.05)
                    yield piece
                yield {"answer": "ab"}
            finally:
                with self.lock:
                    Streamer.active -= 1

    tool = Streamer()
    threads = [
        threading.Thread(target=tool.call_streaming, args=({"question": "q"}, ToolContext(), print)) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Streamer.peak == 1


def test_warm_up_builds_the_agent_in_the_background(config):
    class Warm:
        tools: dict = {}
        warmed = threading.Event()

        def warm_up(self):
            self.warmed.set()

    services = ui.AppServices(config, Warm())
    ui.warm_up(services).join(10)
    assert Warm.warmed.is_set()


def test_sensor_frame_is_numeric_even_with_dropouts(config):
    from edge.registry import DeviceInfo

    class Client:
        def devices(self):
            return [
                DeviceInfo(
                    "greenhouse",
                    capabilities={"readings": {"sensors": ["temperature", "humidity"]}},
                    online=True,
                    announced_at=1.0,
                ),
                DeviceInfo("garden-cam", capabilities={"classify": {}}, online=True, announced_at=1.0),
            ]

    class Fleet(ui.FleetService):
        def client(self, connect=True):
            return Client()

        def readings(self, device, sensor, n=30):
            now = time.time()
            values = [20.0, None, 21.5] if sensor == "temperature" else [55, 56, 57]
            return {
                "sensor": sensor,
                "unit": "°C" if sensor == "temperature" else "%",
                "values": values,
                "timestamps": [now - 3, now - 2, now - 1],
            }

    services = ui.AppServices(config, fleet=Fleet(config))
    frame = ui.sensor_frame(services)
    assert str(frame["value"].dtype) == "float64" and str(frame["seconds"].dtype) == "float64"
    assert sorted(set(frame["series"])) == ["greenhouse/humidity (%)", "greenhouse/temperature (°C)"]
    assert len(frame) == 5 and (frame["seconds"] < 0).all()
