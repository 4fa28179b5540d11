"""The orchestrator's MQTT client: keeps a `DeviceRegistry` fed from retained announcements and
status messages, and sends requests matched to replies by MQTT v5 CorrelationData.

    client = MqttDeviceClient(BrokerSettings(host, port, "orchestrator", password)).connect()
    reply = client.request("garden camera", "classify", {"top_k": 3}, timeout=5)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from edge.errors import BrokerUnavailable, DeviceOfflineError, DeviceReplyError, DeviceTimeoutError
from edge.mqtt import BrokerSettings, connect_blocking, make_client
from edge.protocol import (
    DEFAULT_PREFIX,
    MAX_REQUEST_BYTES,
    device_topic,
    expiry_interval,
    request_payload,
    response_topic,
)
from edge.registry import DeviceInfo, DeviceRegistry

__all__ = ["DeviceReply", "MqttDeviceClient"]


@dataclass
class DeviceReply:
    """A successful answer computed on a device, with its provenance and latencies."""

    device: str
    capability: str
    model: str
    timestamp: float  # device clock, epoch seconds, when the answer was computed
    inference_ms: float  # model invoke time on the device
    device_ms: float  # arrival on the device to reply: queue wait, decode, preprocess, invoke, postprocess
    round_trip_ms: float  # orchestrator -> device -> orchestrator, as measured here
    data: dict[str, Any] = field(default_factory=dict)


class _Pending:
    __slots__ = ("device", "event", "reply", "error")

    def __init__(self, device: str) -> None:
        self.device = device
        self.event = threading.Event()
        self.reply: dict[str, Any] | None = None
        self.error: Exception | None = None


class MqttDeviceClient:
    def __init__(
        self,
        settings: BrokerSettings,
        prefix: str = DEFAULT_PREFIX,
        client_id: str = "",
        registry: DeviceRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.prefix = prefix
        user = settings.username or "anonymous"
        self.client_id = client_id or f"{user}-{uuid.uuid4().hex[:10]}"
        self.reply_topic = response_topic(prefix, user, self.client_id)
        self.registry = registry or DeviceRegistry()
        self._pending: dict[bytes, _Pending] = {}
        self._lock = threading.Lock()
        self._client: Any = None
        self._synced = threading.Event()
        self._sync_token = b""

    # -- connection -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def connect(self, timeout: float = 10.0) -> "MqttDeviceClient":
        """Connect, subscribe, and wait until the retained announcements have arrived."""
        if self._client is not None:
            return self
        client = make_client(self.client_id, self.settings)
        client.on_message = self._on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda c, u, mid, rcs, props: subscribed.set()

        def on_connect(c, userdata, flags, reason_code, properties):
            c.subscribe(
                [
                    (device_topic(self.prefix, "+", "announce"), 1),
                    (device_topic(self.prefix, "+", "status"), 1),
                    (self.reply_topic, 1),
                ]
            )

        connect_blocking(client, self.settings, timeout, on_connect=on_connect)
        self._client = client
        if not subscribed.wait(timeout):
            self.close()
            raise BrokerUnavailable("the MQTT broker did not confirm the subscriptions")
        self._sync(timeout)
        return self

    def _sync(self, timeout: float) -> None:
        # Retained messages are queued to us when the broker handles SUBSCRIBE; a message we
        # publish to ourselves afterwards arrives behind them, so when it is back the registry is full.
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self._sync_token = b"sync-" + uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = self._sync_token
        self._client.publish(self.reply_topic, b"{}", qos=1, properties=props)
        if not self._synced.wait(timeout):
            raise BrokerUnavailable(
                f"the MQTT broker did not deliver our own message back: check the ACL for {self.reply_topic}"
            )

    def close(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            c.disconnect()
            c.loop_stop()
        with self._lock:
            for p in self._pending.values():
                p.error = DeviceTimeoutError("the orchestrator's MQTT client was closed")
                p.event.set()
            self._pending.clear()

    def __enter__(self) -> "MqttDeviceClient":
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        return self.registry.devices()

    def request(
        self, device: str, capability: str, params: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> DeviceReply:
        """Ask a registered device (id, name or alias). Raises UnknownDevice, DeviceOfflineError,
        DeviceTimeoutError or DeviceReplyError. The request expires after `timeout` (broker and device)."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        if self._client is None:
            self.connect()
        info = self.registry.resolve(device)
        if not info.online:
            raise DeviceOfflineError(_offline_message(info))
        payload = request_payload(capability, params or {}, timeout)
        if len(payload) > MAX_REQUEST_BYTES:
            raise DeviceReplyError("too_large", f"request is {len(payload)} bytes; the limit is {MAX_REQUEST_BYTES}")
        corr = uuid.uuid4().bytes
        pending = _Pending(info.id)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = corr
        props.MessageExpiryInterval = expiry_interval(timeout)  # the broker drops it once we stop waiting
        with self._lock:
            self._pending[corr] = pending
        t0 = time.perf_counter()
        try:
            self._client.publish(device_topic(self.prefix, info.id, "request"), payload, qos=1, properties=props)
            if not pending.event.wait(timeout):
                raise DeviceTimeoutError(f"{info.id} did not answer {capability} within {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(corr, None)
        rtt = (time.perf_counter() - t0) * 1000.0
        if pending.error is not None:
            raise pending.error
        msg = pending.reply or {}
        if not msg.get("ok"):
            err = msg.get("error") or {}
            raise DeviceReplyError(str(err.get("code", "error")), f"{info.id}: {err.get('message', 'device error')}")
        return DeviceReply(
            device=str(msg.get("device", info.id)),
            capability=str(msg.get("capability", capability)),
            model=str(msg.get("model", "")),
            timestamp=float(msg.get("ts", 0.0)),
            inference_ms=float(msg.get("inference_ms", 0.0)),
            device_ms=float(msg.get("device_ms", 0.0)),
            round_trip_ms=rtt,
            data=dict(msg.get("data") or {}),
        )

    # -- incoming -------------------------------------------------------------------------
    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        topic = msg.topic
        if topic == self.reply_topic:
            self._on_reply(msg)
            return
        parts = topic.split("/")
        if len(parts) < 3 or parts[-3] != "devices":
            return
        device_id, leaf = parts[-2], parts[-1]
        try:
            body = json.loads(msg.payload.decode("utf-8")) if msg.payload else {}
        except (UnicodeDecodeError, ValueError):
            return  # a garbled retained message must not break the registry
        if not isinstance(body, dict):
            return
        if leaf == "announce":
            self.registry.on_announce(device_id, body)
        elif leaf == "status":
            self.registry.on_status(device_id, body)
            if body.get("state") != "online":
                self._fail_pending(device_id)

    def _on_reply(self, msg: Any) -> None:
        corr = getattr(msg.properties, "CorrelationData", None)
        if corr is not None and corr == self._sync_token:
            self._synced.set()
            return
        with self._lock:
            pending = self._pending.get(corr) if corr is not None else None
        if pending is None:
            return  # late reply to a request that already timed out
        try:
            pending.reply = json.loads(msg.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pending.error = DeviceReplyError("bad_reply", f"{pending.device} sent an unreadable reply")
        self.registry.seen(pending.device)
        pending.event.set()

    def _fail_pending(self, device_id: str) -> None:
        with self._lock:
            waiting = [p for p in self._pending.values() if p.device == device_id]
        for p in waiting:
            p.error = DeviceOfflineError(f"{device_id} went offline before answering")
            p.event.set()


def _offline_message(info: DeviceInfo) -> str:
    if info.last_seen:
        ago = max(0.0, time.time() - info.last_seen)
        return f"{info.id} is offline (last seen {_ago(ago)} ago)"
    return f"{info.id} is offline"


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
