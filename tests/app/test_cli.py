"""`polymodal app`: argument checks, and a real server started by the command (loopback, auth)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from orchestrator.cli import build_parser
from orchestrator.cli.app import parse_auth
from polymodal.errors import InputError
from tests.app.conftest import free_port

MAIN = "import sys; from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))"


def test_parse_auth():
    assert parse_auth("ann:s3cret:x") == ("ann", "s3cret:x")
    assert parse_auth(None) is None
    for bad in ("nocolon", ":pw", "user:"):
        with pytest.raises(InputError, match="USER:PASS"):
            parse_auth(bad)


def test_defaults_are_loopback_without_share():
    args = build_parser().parse_args(["app"])
    assert args.host is None and args.port is None and args.share is False and args.auth is None
    from polymodal.config import Config

    assert Config().app.host == "127.0.0.1"


def test_bad_auth_is_a_one_line_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", MAIN, "app", "--auth", "nocolon", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POLYMODAL_HOME": str(tmp_path)},
    )
    assert out.returncode == 1
    assert json.loads(out.stdout) == {"ok": False, "error": "--auth takes USER:PASS with both parts non-empty"}
    assert out.stderr.strip().splitlines() == ["error: --auth takes USER:PASS with both parts non-empty"]


def _get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_app_command_serves_on_loopback_behind_auth(tmp_path):
    port = free_port()
    env = {**os.environ, "POLYMODAL_HOME": str(tmp_path), "APP_AUTH": "ann:s3cret"}
    # cwd outside the repo: the command serves orchestrator.ui, app.py need not be importable from here
    proc = subprocess.Popen(
        [sys.executable, "-c", MAIN, "app", "--port", str(port), "--auth-env", "APP_AUTH", "--json", "--no-warm-up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # as `cmd &` in a script
    try:
        text = ""
        deadline = time.monotonic() + 120
        info = None
        while info is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            text += line
            try:
                info = json.loads(text)
            except ValueError:
                continue
        assert info is not None, proc.stderr.read() if proc.poll() is not None else text
        assert info["ok"] and info["host"] == "127.0.0.1" and info["port"] == port and info["share_url"] is None
        base = f"http://127.0.0.1:{port}"
        status, _, _ = _get(base + "/config")
        assert status == 401  # nothing without logging in
        status, _, _ = _get(
            base + "/login",
            urllib.parse.urlencode({"username": "ann", "password": "wrong"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status in (400, 401)
        status, _, headers = _get(
            base + "/login",
            urllib.parse.urlencode({"username": "ann", "password": "s3cret"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200
        cookie = "; ".join(c.split(";")[0] for k, c in headers.items() if k.lower() == "set-cookie")
        status, body, _ = _get(base + "/config", headers={"Cookie": cookie})
        assert status == 200 and '"title": "polymodal"' in body.replace('":"', '": "')
        assert (tmp_path / "app" / "cache").is_dir()  # uploads go inside the app's data folder
        (tmp_path / "secret.txt").write_text("not for the browser")  # in the server's working directory
        for path in (tmp_path / "secret.txt", "/etc/passwd"):
            status, body, _ = _get(f"{base}/gradio_api/file={path}", headers={"Cookie": cookie})
            assert status in (403, 404) and "not for the browser" not in body and "root:" not in body
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops it although SIGINT was inherited ignored
        assert proc.wait(60) == 0
    finally:
        proc.terminate()
        proc.wait(30)
