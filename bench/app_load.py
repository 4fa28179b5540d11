"""The app under load: concurrent chat sessions through the page's API (the official gradio_client)
while simulated devices answer concurrent requests over a real mosquitto broker. Asserts that no
request is lost and that no session sees another's history or files (exits 1 otherwise); prints
p50/p95 latencies beside a baseline of 1 session alone and 1 device alone, measured in the same run.

The agent is the offline-light fake (`orchestrator.testing.fake_agent`: the router and executor are
real, the tools and the chat model are fakes), so the numbers are the app's own cost (queueing,
sessions, uploads, streaming) and the broker's, not an LLM's.

    python -m bench app_load
    python -m bench.app_load [--sessions 8] [--turns 4] [--devices 10] [--requests 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

QUESTION = "What is edge AI according to my documents? ({token})"
PHOTO = "find photos like this one ({token})"


@dataclass
class Session:
    """One chat session's secrets (a token per turn, an image of its own colour) and what it saw."""

    index: int
    tokens: list[str]
    colour: tuple[int, int, int]
    image: Path
    seconds: list[float] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    error: str = ""


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def make_sessions(n: int, turns: int, folder: Path) -> list[Session]:
    """`n` sessions, each attaching a file named `photo.png` (same name, its own colour)."""
    from PIL import Image

    out = []
    for i in range(n):
        colour = (37 * i % 256, 255 - 53 * i % 256, 90 + 71 * i % 166)
        image = folder / f"s{i}" / "photo.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 48), colour).save(image)
        out.append(Session(i, [f"tok{i}x{uuid.uuid4().hex[:8]}" for _ in range(turns)], colour, image))
    return out


def run_session(url: str, s: Session, auth: tuple[str, str] | None = None) -> Session:
    """Its turns, in order, through one gradio_client (one server-side session); the first attaches the image."""
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False, auth=auth)
        for t, token in enumerate(s.tokens):
            if t == 0:
                message = {"text": PHOTO.format(token=token), "files": [handle_file(str(s.image))]}
            else:
                message = {"text": QUESTION.format(token=token), "files": []}
            t0 = time.perf_counter()
            chat, *_ = client.predict(message, None, api_name="/chat")
            s.seconds.append(time.perf_counter() - t0)
            s.history = chat
        client.close()
    except Exception as exc:  # noqa: BLE001 - counted as lost turns, reported
        s.error = f"{type(exc).__name__}: {exc}"
    return s


def _texts_and_files(history: list[Any]) -> tuple[str, list[str]]:
    texts, files = [], []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if isinstance(x.get("path"), str):
                files.append(x["path"])
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            texts.append(x)

    walk(history)
    return "\n".join(texts), files


def _colour(path: Path) -> tuple[int, ...]:
    from PIL import Image

    with Image.open(path) as im:
        return tuple(im.convert("RGB").getpixel((im.width // 2, im.height // 2)))


def check_sessions(sessions: list[Session], uploads: Path | None = None) -> list[str]:
    """Problems: a lost turn, a turn missing from its own history, another session's token or image
    shown, and (given the app's uploads folder) a session's uploaded file overwritten by another's."""
    problems = []
    if uploads is not None:
        kept = {_colour(p) for p in uploads.rglob("photo.png")}
        problems += [f"session {s.index}: its uploaded file was overwritten" for s in sessions if s.colour not in kept]
    for s in sessions:
        if s.error or len(s.seconds) != len(s.tokens):
            problems.append(f"session {s.index}: lost {len(s.tokens) - len(s.seconds)} turn(s) ({s.error})")
            continue
        text, files = _texts_and_files(s.history)
        problems += [f"session {s.index}: its own turn {tok} is missing" for tok in s.tokens if tok not in text]
        for o in sessions:
            if o is not s and any(tok in text for tok in o.tokens):
                problems.append(f"session {s.index} sees session {o.index}'s messages")
        for f in files:
            if _colour(Path(f)) != s.colour:
                problems.append(f"session {s.index} shows an image that is not its own ({f})")
        if not files:
            problems.append(f"session {s.index}: its image is not shown")
    return problems


def run_chats(url: str, sessions: list[Session], auth: tuple[str, str] | None = None) -> list[Session]:
    with ThreadPoolExecutor(len(sessions)) as pool:
        return list(pool.map(lambda s: run_session(url, s, auth), sessions))


# -- devices -------------------------------------------------------------------------------------------


def device_load(client: Any, device_ids: list[str], per_device: int) -> tuple[list[float], list[str]]:
    """`per_device` concurrent `readings` requests to each device at once, alternating sensors; returns
    (round trips in s, problems: a lost request or a reply for another device or sensor)."""
    sensors = {d.id: d.capabilities["readings"]["sensors"] for d in client.devices() if d.id in device_ids}
    jobs = [(dev, sensors[dev][k % len(sensors[dev])]) for dev in device_ids for k in range(per_device)]

    def ask(job: tuple[str, str]) -> tuple[float, str]:
        dev, sensor = job
        t0 = time.perf_counter()
        try:
            reply = client.request(dev, "readings", {"sensor": sensor, "n": 5}, timeout=30)
        except Exception as exc:  # noqa: BLE001
            return float("nan"), f"{dev}/{sensor}: lost ({exc})"
        dt = time.perf_counter() - t0
        if reply.device != dev or reply.data.get("sensor") != sensor:
            return dt, f"{dev}/{sensor}: answered by {reply.device}/{reply.data.get('sensor')}"
        return dt, ""

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(ask, jobs))
    return [dt for dt, p in results if not p], [p for _, p in results if p]


# -- the run -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _line(label: str, xs: list[float], n: int) -> str:
    return (
        f"  {label:34s} p50 {_pct(xs, 50) * 1000:8.1f} ms  p95 {_pct(xs, 95) * 1000:8.1f} ms  ({len(xs)}/{n} answered)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--turns", type=int, default=4, help="turns per session (the first attaches a photo)")
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--requests", type=int, default=20, help="concurrent requests per device")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from edge.broker import mosquitto_available
    from edge.fleet import fleet_specs
    from orchestrator.fleet import credentials_file, start_fleet
    from orchestrator.testing import fake_agent
    from orchestrator.ui import build_app, serve
    from polymodal.config import Config
    from tools.edge_query import connect_edge_client

    if not mosquitto_available():
        print("error: mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-app-load-"))
    os.environ["GRADIO_TEMP_DIR"] = str(work / "gradio")
    config = Config()
    config.paths.data_dir = str(work / "data")
    config.embedder.model = "hash"
    config.images.encoder = "fake"
    config.edge.port = free_port()
    demo = build_app(config, agent=fake_agent())
    url = serve(demo, "127.0.0.1", free_port(), block=False, quiet=True)
    specs = fleet_specs(args.devices, roles=("greenhouse",))
    local = start_fleet(config, specs)
    client = connect_edge_client(config.edge, credentials_file(config), timeout=10)
    ids = [s.id for s in specs]
    try:
        client.registry.wait_for(lambda r: all((d := r.get(i)) is not None and d.online for i in ids), 30)
        run_chats(url, make_sessions(1, 1, work / "warm"))  # first-use costs (router, thumbnails) out of the way
        device_load(client, ids[:1], 2)

        base_chat = run_chats(url, make_sessions(1, args.turns, work / "base"))
        base_dev, base_dev_problems = device_load(client, ids[:1], args.requests)

        sessions = make_sessions(args.sessions, args.turns, work / "load")
        with ThreadPoolExecutor(2) as pool:
            chats = pool.submit(run_chats, url, sessions)
            devs = pool.submit(device_load, client, ids, args.requests)
            load_chat, (load_dev, dev_problems) = chats.result(), devs.result()
        # checked before the app closes: closing deletes its cache (the thumbnails shown)
        uploads = demo.services.uploads
        problems = check_sessions(base_chat) + check_sessions(load_chat, uploads) + base_dev_problems + dev_problems
    finally:
        client.close()
        local.stop()
        demo.close()

    chat_s = [x for s in load_chat for x in s.seconds]
    base_s = [x for s in base_chat for x in s.seconds]
    print(f"chat turns through the app's API (gradio_client, fake agent), {args.turns} turns per session:")
    print(_line("baseline: 1 session alone", base_s, args.turns))
    print(_line(f"{args.sessions} sessions + the device load", chat_s, args.sessions * args.turns))
    print(f"device requests over mosquitto ('readings'), {args.requests} concurrent per device:")
    print(_line("baseline: 1 device alone", base_dev, args.requests))
    print(_line(f"{args.devices} devices + the chat load", load_dev, args.devices * args.requests))
    print("isolation and losses:", "none lost, no session saw another's history or files" if not problems else "")
    for p in problems:
        print(f"  FAIL {p}")
    if args.json:
        out = {
            "chat": {"baseline_s": base_s, "load_s": chat_s},
            "devices": {"baseline_s": base_dev, "load_s": load_dev},
            "problems": problems,
        }
        print(json.dumps(out))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
