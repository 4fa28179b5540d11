"""The page's events as an API: through the official `gradio_client` against a launched app, only
the chat and the read-only image search are callable (and only with auth when auth is set); deleting,
ingesting, indexing and the fleet are private to the page. Server folders: only under [app] ingest_roots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError
from PIL import Image

from orchestrator import ui
from orchestrator.testing import fake_agent
from polymodal.errors import InputError

PUBLIC = {"/chat", "/search_images"}
FILE = {"_type": "gradio.FileData"}


def client_for(url: str, **kw) -> Client:
    return Client(url, verbose=False, download_files=False, analytics_enabled=False, **kw)


def endpoints(client: Client) -> tuple[set[str], set[str]]:
    info = client.view_api(print_info=False, return_format="dict")
    return set(info["named_endpoints"]), set(info["unnamed_endpoints"])


def test_only_chat_and_search_are_in_the_api(config, serve_app):
    url, demo = serve_app(config, fake_agent())
    named, unnamed = endpoints(client_for(url))
    assert named == PUBLIC and unnamed == set()
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility != "private"}
    assert public == {"chat", "search_images"}  # every other event of the page is private


def test_chat_through_the_api_and_hidden_events_refused(config, serve_app, tmp_path):
    services = ui.AppServices(config, fake_agent())
    note = tmp_path / "edge.md"
    note.write_text("# Edge AI\nEdge AI runs small models on devices near the sensors.")
    *_, (line, _) = ui.ingest_documents(services, [str(note)], "")
    assert "1 added" in line
    doc_id = ui.list_documents(services)[0][0]
    url, demo = serve_app(config, services.agent)
    client = client_for(url)
    chat, _box, _camera = client.predict(
        {"text": "What is edge AI according to my documents?", "files": []}, None, api_name="/chat"
    )
    assert "Answer about What is edge AI according to my documents? [1]" in str(chat)
    with pytest.raises(ValueError):
        client.predict([doc_id], api_name="/remove")
    for fn in demo.fns.values():
        if fn.api_visibility == "private":
            with pytest.raises(ValueError, match="function index"):
                client.predict(fn_index=fn._id)
    assert [r[0] for r in ui.list_documents(services)] == [doc_id]  # nothing was deleted
    assert not services.fleet.running


def test_plain_http_cannot_call_a_private_event_by_name(config, serve_app, tmp_path):
    """gradio answers /call/<name> and /run/<name> whatever the event's visibility: the server refuses
    every name but the public ones. A file the client did not upload is refused too."""
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret)
    url, demo = serve_app(config, fake_agent())
    private = sorted(fn.api_name for fn in demo.fns.values() if fn.api_visibility == "private")
    assert "remove" in private and "run" in private
    with httpx.Client(base_url=url, timeout=60) as http:
        for name in private:
            for route in (f"/gradio_api/call/{name}", f"/gradio_api/call/v2/{name}", f"/gradio_api/run/{name}"):
                r = http.post(route, json={"data": [["x"]]})
                assert r.status_code == 404, (route, r.status_code, r.text)
        asked = http.post(
            "/gradio_api/call/chat",
            json={"data": [{"text": "find photos like this", "files": []}, {"path": str(secret), "meta": FILE}]},
        )
        assert asked.status_code == 200
        events = http.get(f"/gradio_api/call/chat/{asked.json()['event_id']}").text
    assert "event: error" in events and "event: complete" not in events
    assert not list(demo.services.uploads.rglob("secret.png"))


def test_with_auth_an_anonymous_client_is_refused(config, serve_app):
    url, _ = serve_app(config, fake_agent(), auth=("ann", "s3cret"))
    with pytest.raises(AuthenticationError):
        client_for(url)
    with pytest.raises((AuthenticationError, ValueError), match="Could not login"):  # gradio answers 400
        client_for(url, auth=("ann", "wrong"))
    client = client_for(url, auth=("ann", "s3cret"))
    assert endpoints(client) == (PUBLIC, set())
    chat, *_ = client.predict({"text": "What is edge AI?", "files": []}, None, api_name="/chat")
    assert "Answer about What is edge AI?" in str(chat)


# -- server folders: only under [app] ingest_roots ----------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    """roots/docs (allowed, with a symlink to a file and one to a folder outside) and outside/ (not)."""
    allowed = tmp_path / "roots" / "docs"
    outside = tmp_path / "outside"
    allowed.mkdir(parents=True)
    outside.mkdir()
    (allowed / "inside.md").write_text("# Inside\nA note the app may read.")
    (outside / "secret.md").write_text("# Secret\nNot for the app.")
    os.symlink(outside / "secret.md", allowed / "leak.md")
    os.symlink(outside, allowed / "out")
    return allowed, outside


def one_line_refusal(fn) -> str:
    with pytest.raises(InputError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg and "ingest_roots" in msg
    return msg


def test_no_server_folder_without_configured_roots(config, tree):
    allowed, _ = tree
    assert config.app.ingest_roots == []
    services = ui.AppServices(config, fake_agent())
    msg = one_line_refusal(lambda: list(ui.ingest_documents(services, None, str(allowed))))
    assert "upload" in msg  # says what works instead
    one_line_refusal(lambda: list(ui.index_images(services, str(allowed))))
    assert not config.kb_path().exists()


def test_server_folders_only_under_the_roots_defeating_dotdot_and_symlinks(config, tree):
    allowed, outside = tree
    config.app.ingest_roots = [str(allowed)]
    services = ui.AppServices(config, fake_agent())
    for sneaky in (outside, allowed / ".." / ".." / "outside", allowed / "out", "/etc", "~"):
        msg = one_line_refusal(lambda: list(ui.ingest_documents(services, None, str(sneaky))))
        assert "outside" in msg
        one_line_refusal(lambda: list(ui.index_images(services, str(sneaky))))
    *_, (line, rows) = ui.ingest_documents(services, None, str(allowed))
    assert [r[0] for r in ui.list_documents(services)] == [str(allowed / "inside.md")]
    leak = next(r for r in rows if Path(r[0]).name in ("leak.md", "secret.md"))
    assert leak[1] == "skipped" and "outside" in leak[3]  # a symlink out of the root is not followed


def test_images_under_a_root_skip_a_symlink_out(config, photo_folder, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "cat.png").symlink_to(photo_folder / "chelsea.png")  # points outside the root
    shutil.copyfile(photo_folder / "coffee.png", root / "coffee.png")  # a real file inside
    config.app.ingest_roots = [str(root)]
    services = ui.AppServices(config, fake_agent())
    *_, (line, rows) = ui.index_images(services, str(root))
    assert line.startswith("1 added") and [r[0] for r in rows] == [str(root / "cat.png")]
    assert "outside" in rows[0][2]
