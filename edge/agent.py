"""The device agent: announces the device (retained), keeps a last-will "offline" status, and
answers requests on `<prefix>/devices/<id>/request` through the MQTT v5 ResponseTopic and
CorrelationData. Requests run on one worker thread so the network loop (and keepalive pings)
never waits for inference; a bad request gets an error reply, never a crash. A request whose
deadline has passed (the orchestrator stopped waiting) is dropped unanswered: a device that was
paused or busy does not run stale requests.

    agent = DeviceAgent("garden-cam", [Classify(model, camera)], BrokerSettings(host, port, user, pw)).start()
    (`python -m edge.fleet --role camera --id garden-cam ...` runs a simulated one as a process)
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from edge.capabilities import Capability
from edge.errors import RequestError
from edge.mqtt import BrokerSettings, connect_blocking, make_client
from edge.protocol import (
    DEFAULT_PREFIX,
    PROTOCOL_VERSION,
    check_device_id,
    decode_request,
    device_topic,
    encode,
    error_reply,
    ok_reply,
)

__all__ = ["DeviceAgent", "FIRMWARE_VERSION"]

FIRMWARE_VERSION = "polymodal-edge/0.1.0"
log = logging.getLogger(__name__)


class DeviceAgent:
    def __init__(
        self,
        device_id: str,
        capabilities: list[Capability],
        settings: BrokerSettings,
        *,
        prefix: str = DEFAULT_PREFIX,
        name: str = "",
        kind: str = "",
        aliases: tuple[str, ...] = (),
        location: str = "",
        heartbeat_s: float = 30.0,
        max_queue: int = 256,
    ) -> None:
        self.device_id = check_device_id(device_id)
        self.capabilities = {c.name: c for c in capabilities}
        self.settings = settings
        self.prefix = prefix
        self.name = name or device_id
        self.kind = kind
        self.aliases = tuple(aliases)
        self.location = location
        self.heartbeat_s = heartbeat_s
        self.handled = 0
        self.errors = 0
        self.dropped = 0  # requests that expired before they could run
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client: Any = None

    # -- topics ---------------------------------------------------------------------------
    def topic(self, leaf: str) -> str:
        return device_topic(self.prefix, self.device_id, leaf)

    def announcement(self) -> dict[str, Any]:
        models = {}
        for cap in self.capabilities.values():
            for m in cap.models():
                models[m.name] = m.spec()
        return {
            "v": PROTOCOL_VERSION,
            "id": self.device_id,
            "name": self.name,
            "kind": self.kind,
            "aliases": list(self.aliases),
            "location": self.location,
            "firmware": FIRMWARE_VERSION,
            "capabilities": {n: c.describe() for n, c in self.capabilities.items()},
            "models": models,
            "keepalive": self.settings.keepalive,
            "ts": time.time(),
        }

    # -- lifecycle ------------------------------------------------------------------------
    def load_models(self) -> None:
        for cap in self.capabilities.values():
            for m in cap.models():
                m.load()

    def start(self, timeout: float = 10.0) -> "DeviceAgent":
        self.load_models()  # before going online: the first request must not pay for loading
        announce = encode(self.announcement())
        client = make_client(f"{self.device_id}", self.settings)
        client.will_set(
            self.topic("status"), encode({"state": "offline", "reason": "lost", "ts": None}), qos=1, retain=True
        )
        client.on_message = self._on_message

        def on_connect(c, userdata, flags, reason_code, properties):
            c.subscribe(self.topic("request"), qos=1)
            c.publish(self.topic("announce"), announce, qos=1, retain=True)
            self._publish_status(c, "online")

        self._client = client
        connect_blocking(client, self.settings, timeout, on_connect=on_connect)
        self._stop.clear()
        for target in (self._work, self._heartbeat):
            t = threading.Thread(target=target, name=f"{self.device_id}-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Graceful shutdown: say offline (retained), then disconnect (the will is not sent)."""
        self._stop.set()
        c = self._client
        if c is not None:
            info = self._publish_status(c, "offline", reason="shutdown")
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
            c.disconnect()
            c.loop_stop()
        self._join()

    def crash(self) -> None:
        """Simulate a power cut: drop the TCP connection without DISCONNECT, so the broker
        publishes the last will."""
        self._stop.set()
        c = self._client
        if c is not None:
            c.loop_stop()
            sock = c.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self._join()

    def _join(self) -> None:
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads.clear()
        self._client = None

    def _publish_status(self, client: Any, state: str, reason: str = ""):
        body = {"state": state, "ts": time.time()}
        if reason:
            body["reason"] = reason
        return client.publish(self.topic("status"), encode(body), qos=1, retain=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            c = self._client
            if c is not None and c.is_connected():
                self._publish_status(c, "online")

    # -- requests -------------------------------------------------------------------------
    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = getattr(msg, "properties", None)
        reply_to = getattr(props, "ResponseTopic", None)
        corr = getattr(props, "CorrelationData", None)
        if not reply_to:  # nowhere to answer: drop, but do not die
            log.warning("%s: request without ResponseTopic dropped", self.device_id)
            return
        t_in = time.perf_counter()
        # the broker says how long the request has left (whole seconds): a deadline on our own clock
        left = getattr(props, "MessageExpiryInterval", None)
        expires_at = t_in + left + 1.0 if isinstance(left, int) else None
        try:
            self._queue.put_nowait((msg.payload, reply_to, corr, t_in, expires_at))
        except queue.Full:
            self._reply(reply_to, corr, error_reply(self.device_id, "", "busy", "device queue is full; retry later"))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                payload, reply_to, corr, t_in, expires_at = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            reply = self.handle(payload, t_in, expires_at)
            if reply is not None:
                self._reply(reply_to, corr, reply)

    def _reply(self, topic: str, corr: bytes | None, body: dict[str, Any]) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        if corr is not None:
            props.CorrelationData = corr
        c = self._client
        if c is not None:
            c.publish(topic, encode(body), qos=1, properties=props)

    def handle(
        self, payload: bytes, t_in: float | None = None, expires_at: float | None = None
    ) -> dict[str, Any] | None:
        """Answer one request payload (no MQTT involved: usable directly in tests). None, and nothing
        run, when the request has expired: by its body deadline or at `expires_at` (perf_counter)."""
        t0 = t_in if t_in is not None else time.perf_counter()
        capability = ""
        try:
            request = decode_request(payload)
            capability, params = request.capability, request.params
            if request.expired() or (expires_at is not None and time.perf_counter() > expires_at):
                self.dropped += 1
                log.info("%s: %s request expired before it could run; dropped unanswered", self.device_id, capability)
                return None
            cap = self.capabilities.get(capability)
            if cap is None:
                raise RequestError(
                    "unknown_capability",
                    f"no capability {capability!r}; this device has {', '.join(self.capabilities)}",
                )
            data, inference_ms = cap(params)
            self.handled += 1
            return ok_reply(
                self.device_id, capability, cap.model, data, inference_ms, (time.perf_counter() - t0) * 1000.0
            )
        except RequestError as exc:
            self.errors += 1
            return error_reply(self.device_id, capability, exc.code, str(exc), (time.perf_counter() - t0) * 1000.0)
        except Exception as exc:  # a device must keep serving: report, never crash
            self.errors += 1
            log.exception("%s: %s failed", self.device_id, capability)
            return error_reply(
                self.device_id,
                capability,
                "internal",
                f"{type(exc).__name__}: {exc}",
                (time.perf_counter() - t0) * 1000.0,
            )
