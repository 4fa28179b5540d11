"""The app in a real browser (headless Debian Chromium through Playwright): chat with citations,
separate conversations per tab, short errors, the knowledge base, the image library, the devices
tab. Each test saves a screenshot under artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orchestrator.testing import BrokenGenerateTool, FakeRagTool, fake_agent
from tests.app.conftest import shot

pytestmark = pytest.mark.browser


def ask(page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    box.fill(text)
    box.press("Enter")


def the_cat(photo_folder):
    """The gallery caption of the cat from the photo folder, first hit."""
    return re.compile(r"^chelsea\.png · score [0-9.]+ · " + re.escape(str(photo_folder / "chelsea.png")))


def first_caption(page):
    return page.locator("#img-gallery .caption-label").first


def test_chat_answer_with_expandable_citation(config, serve_app, page):
    url, _ = serve_app(config, fake_agent())
    page.goto(url)
    ask(page, "What is edge AI according to my documents?")
    page.get_by_text("Answer about What is edge AI according to my documents? [1]").wait_for()
    page.get_by_text("Plan: rag_answer").wait_for()
    passage = page.get_by_text("A passage about What is edge AI")
    page.get_by_text("Sources (1)").click()
    page.get_by_text("[1] edge-ai.md").wait_for()
    assert not passage.is_visible()  # each source stays collapsed until opened
    page.get_by_text("[1] edge-ai.md").click()
    passage.wait_for()
    page.get_by_text("kb/edge-ai.md").wait_for()
    page.wait_for_timeout(800)  # the source opens with a slide: let it finish for the screenshot
    shot(page, "chat-citation")


def test_two_tabs_keep_separate_conversations(config, serve_app, browser_context):
    url, demo = serve_app(config, fake_agent())
    a, b = browser_context.new_page(), browser_context.new_page()
    try:
        a.goto(url)
        b.goto(url)
        ask(a, "draw a lighthouse at dusk")
        ask(b, "what does the garden camera see?")
        a.get_by_text("Plan: generate_image").wait_for()
        b.get_by_text("Plan: edge_query").wait_for()
        ask(a, "make it bluer")
        a.get_by_text("make it bluer").wait_for()
        a.locator("text=Plan: generate_image").nth(1).wait_for()
        assert b.get_by_text("lighthouse").count() == 0
        assert a.get_by_text("garden camera").count() == 0
        shot(a, "chat-tab-a")
    finally:
        a.close()
        b.close()


def test_tool_error_is_a_short_message(config, serve_app, page):
    url, _ = serve_app(config, fake_agent(tools=[FakeRagTool(), BrokenGenerateTool()]))
    page.goto(url)
    ask(page, "draw a picture of a red fox on a frozen lake")
    page.get_by_text(re.compile("no diffusion weights configured")).first.wait_for()
    text = page.locator("#chat").inner_text()
    assert "Traceback" not in text
    shot(page, "chat-error")
    page.locator("#chat-new").click()  # a new conversation: the page and the history start empty
    expect(page.locator("#chat")).not_to_contain_text("red fox")
    ask(page, "What is edge AI according to my documents?")
    page.get_by_text("Answer about What is edge AI").wait_for()
    expect(page.locator("#chat")).not_to_contain_text("red fox")


def test_knowledge_base_upload_summary_and_delete(config, serve_app, page, tmp_path):
    """Each step waits on the event that ends it (the upload's, the ingest's), not on the clock: on a busy
    box any of them may take longer than a fixed timeout (pytest-timeout still guards a hang). The file's
    name is no such event: the page shows it while the upload is still on its way."""
    good = tmp_path / "edge-notes.md"
    good.write_text("# Edge AI\nEdge AI runs small models on devices near the sensors.")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    url, _ = serve_app(config, fake_agent())
    page.goto(url)
    page.get_by_role("tab", name="Knowledge base").click()
    held = []  # the uploads' requests, answered when the test says so
    page.route("**/gradio_api/upload*", lambda route: held.append(route))
    page.locator("#kb-files input[type=file]").set_input_files([str(good), str(empty)], timeout=0)
    page.locator("#kb-files").get_by_text("edge-notes.md").first.wait_for(timeout=0)
    assert held and "ready to ingest" not in page.locator("#kb-status").inner_text()
    for route in held:
        route.continue_()
    page.unroute("**/gradio_api/upload*")
    page.locator("#kb-status").get_by_text("2 file(s) uploaded, ready to ingest").wait_for(timeout=0)
    page.locator("#kb-ingest").click()
    page.locator("#kb-status").get_by_text(re.compile(r"✓ 2 files: 1 added.*1 skipped")).wait_for(timeout=0)
    expect(page.locator("#kb-docs")).to_contain_text(re.compile(r"uploads/kb/edge-notes\.md"))
    shot(page, "kb")


def test_image_library_upload_cat_and_see_it_first(config, serve_app, page, photo_folder, cat_photo):
    """Colour encoder (no model): index the photos, search with the uploaded cat photo."""
    config.app.ingest_roots = [str(photo_folder)]
    url, _ = serve_app(config, fake_agent())
    page.goto(url)
    page.get_by_role("tab", name="Image library").click()
    page.locator("#img-folder textarea, #img-folder input").first.fill(str(photo_folder))
    page.locator("#img-index").click()
    page.locator("#img-status").get_by_text(re.compile(r"✓ 5 added")).wait_for(timeout=120_000)
    page.locator("#img-example input[type=file]").set_input_files(str(cat_photo))
    page.locator("#img-search").click()
    expect(page.locator("#img-found")).to_contain_text("5 photo(s) for the example image · encoder fake-colour")
    expect(first_caption(page)).to_have_text(the_cat(photo_folder))
    shot(page, "images-example")


@pytest.mark.slow
def test_image_library_real_encoder_text_and_upload(config, serve_app, page, photo_folder, cat_photo):
    """The offline default encoder (ConSE): 'a cat' and the uploaded cat photo both rank the cat first."""
    config.images.encoder = "auto"
    config.app.ingest_roots = [str(photo_folder)]
    url, _ = serve_app(config, fake_agent())
    page.goto(url)
    page.get_by_role("tab", name="Image library").click()
    page.locator("#img-folder textarea, #img-folder input").first.fill(str(photo_folder))
    page.locator("#img-index").click()
    page.locator("#img-status").get_by_text(re.compile(r"✓ 5 added")).wait_for(timeout=300_000)
    page.locator("#img-query textarea, #img-query input").first.fill("a cat")
    page.locator("#img-search").click()
    expect(page.locator("#img-found")).to_contain_text(
        re.compile(r"photo\(s\) for 'a cat' · encoder conse"), timeout=120_000
    )
    expect(first_caption(page)).to_have_text(the_cat(photo_folder))
    shot(page, "images-text")
    page.locator("#img-query textarea, #img-query input").first.fill("")
    page.locator("#img-example input[type=file]").set_input_files(str(cat_photo))
    page.locator("#img-search").click()
    expect(page.locator("#img-found")).to_contain_text("photo(s) for the example image · encoder conse")
    expect(first_caption(page)).to_have_text(the_cat(photo_folder))
    shot(page, "images-upload")


@pytest.mark.broker
def test_devices_tab_starts_the_fleet_and_chat_shows_the_camera_frame(config, serve_app, page):
    """Real mosquitto and simulated devices with their LiteRT models, started from the page."""
    from edge.broker import mosquitto_available
    from tools.edge_query import EdgeQueryTool

    if not mosquitto_available():
        pytest.skip("mosquitto is not installed: apt-get install mosquitto")
    creds = config.paths.data() / "edge" / "credentials.json"
    agent = fake_agent(tools=[FakeRagTool(), EdgeQueryTool(config=config.edge, credentials_file=creds)])
    url, demo = serve_app(config, agent)
    page.goto(url)
    page.get_by_role("tab", name="Devices").click()
    expect(page.locator("#dev-status")).to_contain_text("No broker reachable")
    page.locator("#fleet-start").click()
    expect(page.locator("#dev-status")).to_contain_text("3 of 3 device(s) online", timeout=90_000)
    table = page.locator("#dev-table")
    for device in ("garden-cam", "greenhouse", "front-door"):
        expect(table).to_contain_text(device)
    expect(table).to_contain_text("readings, sensor_status")
    expect(page.locator("#dev-plot")).to_contain_text("greenhouse/temperature (°C)")  # the legend: lines drawn
    page.wait_for_timeout(1000)  # let the plot finish drawing before the screenshot
    shot(page, "devices")
    page.get_by_role("tab", name="Chat").click()
    ask(page, "what does the garden camera see?")
    page.get_by_text("Device answer").wait_for(timeout=60_000)
    expect(page.locator("#chat")).to_contain_text("garden-cam")
    expect(page.locator("#chat")).to_contain_text("the frame garden-cam classified: chelsea")
    expect(page.locator("#chat img[src*='frame-']").first).to_be_visible()
    shot(page, "chat-device")
    page.get_by_role("tab", name="Devices").click()
    page.locator("#fleet-stop").click()
    expect(page.locator("#dev-status")).to_contain_text("stopped")
    page.locator("#fleet-start").click()  # a restarted broker has new passwords: the chat reconnects
    expect(page.locator("#dev-status")).to_contain_text("3 of 3 device(s) online", timeout=90_000)
    page.get_by_role("tab", name="Chat").click()
    ask(page, "is the greenhouse temperature sensor working normally?")
    expect(page.locator("#chat")).to_contain_text(
        re.compile(r"greenhouse sensor node temperature: \w+ \(confidence"), timeout=60_000
    )


@pytest.mark.slow
def test_real_llm_answers_from_an_uploaded_document_with_a_citation(config, serve_app, page, tmp_path):
    """The offline defaults end to end: upload a document (real embedder), ask, the real LLM answers
    through rag_answer and the answer carries a citation to that document."""
    from orchestrator.agent import Agent

    config.embedder.model = "auto"
    agent = Agent.from_config(config)
    if "rag_answer" not in agent.tools:
        reason = next((p.reason for p in agent.problems if p.tool == "rag_answer"), "not built")
        pytest.skip(f"rag_answer is not available yet: {reason}")
    doc = tmp_path / "greenhouse-handbook.md"
    doc.write_text(
        "# Greenhouse handbook\n\nThe greenhouse irrigation pump runs every morning at 06:30 for "
        "twelve minutes. The night temperature must stay above 14 degrees Celsius; below that the "
        "heater starts automatically.\n\nThe CO2 sensor is recalibrated every three months.\n"
    )
    url, _ = serve_app(config, agent)
    page.goto(url)
    page.get_by_role("tab", name="Knowledge base").click()
    page.locator("#kb-files input[type=file]").set_input_files(str(doc))
    page.locator("#kb-status").get_by_text("1 file(s) uploaded, ready to ingest").wait_for(timeout=0)  # the event
    page.locator("#kb-ingest").click()
    page.locator("#kb-status").get_by_text(re.compile(r"✓ 1 files: 1 added")).wait_for(timeout=0)
    page.get_by_role("tab", name="Chat").click()
    ask(page, "According to the greenhouse handbook, at what time does the irrigation pump run?")
    sources = page.get_by_text(re.compile(r"^Sources \(\d+\)$"))
    sources.wait_for(timeout=300_000)
    expect(page.locator("#chat")).to_contain_text(re.compile(r"6[:.]30"))
    sources.click()
    page.get_by_text(re.compile(r"^\[1\] greenhouse-handbook\.md § Greenhouse handbook$")).click()  # with its heading
    quote = page.locator("#chat blockquote").filter(has_text="irrigation pump runs every morning")
    quote.first.wait_for()  # the quoted passage, visible once the source is opened
    page.wait_for_timeout(800)
    shot(page, "chat-real-llm")


def test_slow_generation_does_not_block_another_tab_and_stop_cancels_it(config, serve_app, browser_context):
    from orchestrator.testing import FakeGenerateTool

    agent = fake_agent(tools=[FakeRagTool(), FakeGenerateTool(steps=600, step_seconds=0.1)])
    url, _ = serve_app(config, agent)
    a, b = browser_context.new_page(), browser_context.new_page()
    try:
        a.goto(url)
        b.goto(url)
        ask(a, "draw a picture of a red fox on a frozen lake")
        expect(a.locator("#chat")).to_contain_text(re.compile(r"step \d+/600"))  # generating, far from done
        ask(b, "What is edge AI according to my documents?")
        b.get_by_text("Answer about What is edge AI").wait_for()
        expect(a.locator("#chat")).not_to_contain_text("step 600/600")  # a is still generating meanwhile
        shot(a, "chat-generating")
        a.locator("#chat-stop").click()
        expect(a.locator("#chat")).to_contain_text("Cancelled.")
        expect(a.locator("#chat")).not_to_contain_text("Generated 1 image")
        ask(a, "What is edge AI according to my documents?")  # the tab works again after a stop
        a.get_by_text("Answer about What is edge AI").wait_for()
    finally:
        a.close()
        b.close()


def test_chat_with_an_attached_photo_finds_the_cat_first(config, serve_app, page, photo_folder, cat_photo):
    """The real image_search tool over a colour-encoder library: attach the cat, get the cat back first."""
    from orchestrator import ui
    from tools.image_search import ImageSearchTool

    config.app.ingest_roots = [str(photo_folder)]
    services = ui.AppServices(config, fake_agent(tools=[FakeRagTool(), ImageSearchTool(config=config)]))
    list(ui.index_images(services, str(photo_folder)))
    url, _ = serve_app(config, services.agent)
    page.goto(url)
    page.locator("#chat-input input[type=file]").set_input_files(str(cat_photo))
    page.locator("#chat-input textarea").fill("find photos like this one")
    page.locator("#chat-input textarea").press("Enter")
    page.get_by_text("Plan: image_search").wait_for()
    first = page.locator("#chat .caption-label").first
    expect(first).to_have_text(the_cat(photo_folder))
    shot(page, "chat-photo")


def test_settings_tab_shows_roles_doctor_and_memory(config, serve_app, page):
    url, _ = serve_app(config, fake_agent())
    page.goto(url)
    page.get_by_role("tab", name="Settings").click()
    report = page.locator("#settings-report")
    for text in (
        "Models",
        "llm",
        "embedder",
        "active image encoder",
        "Doctor: what is missing",
        "Process resident memory",
        "rag_answer",
    ):
        expect(report).to_contain_text(text)
    shot(page, "settings")
