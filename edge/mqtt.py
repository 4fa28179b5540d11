"""paho-mqtt 2.x glue shared by devices and the orchestrator: an MQTT v5 client with TCP_NODELAY
(Nagle's algorithm costs ~40-90 ms per small request/reply on loopback), optional TLS, and a
blocking connect that turns refusals into one-line `BrokerUnavailable` errors."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["BrokerSettings", "make_client", "connect_blocking"]


@dataclass
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    keepalive: int = 10
    tcp_nodelay: bool = True  # False only to measure what Nagle's algorithm costs (bench/)


def _nodelay(sock: Any) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (e.g. websockets wrapper)
        pass


def make_client(client_id: str, settings: BrokerSettings):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls_ca or settings.tls_cert:
        client.tls_set(
            ca_certs=settings.tls_ca or None, certfile=settings.tls_cert or None, keyfile=settings.tls_key or None
        )
    if settings.tcp_nodelay:
        client.on_socket_open = lambda c, u, sock: _nodelay(sock)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    # requests and replies are many and small: do not let paho queue them behind a window of 20
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client


def connect_blocking(
    client, settings: BrokerSettings, timeout: float = 10.0, on_connect=None, clean_start: bool = True
) -> None:
    """Connect, start the network thread and wait for CONNACK; raise `BrokerUnavailable` if refused."""
    from edge.errors import BrokerUnavailable

    done = threading.Event()
    outcome: dict[str, Any] = {}

    def _on_connect(c, userdata, flags, reason_code, properties):
        outcome.setdefault("rc", reason_code)
        if not reason_code.is_failure and on_connect is not None:
            on_connect(c, userdata, flags, reason_code, properties)
        done.set()

    client.on_connect = _on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive, clean_start=clean_start)
    except (OSError, ValueError) as exc:
        raise BrokerUnavailable(f"cannot reach the MQTT broker at {settings.host}:{settings.port}: {exc}") from None
    if settings.tcp_nodelay:
        _nodelay(client.socket())
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise BrokerUnavailable(
            f"no answer from the MQTT broker at {settings.host}:{settings.port} within {timeout:g} s"
        )
    rc = outcome["rc"]
    if rc.is_failure:
        client.loop_stop()
        client.disconnect()
        raise BrokerUnavailable(
            f"the MQTT broker at {settings.host}:{settings.port} refused {settings.username or 'anonymous'}: {rc}"
        )
    # from now on, reconnects run the caller's on_connect (re-subscribe, re-announce)
    if on_connect is not None:
        client.on_connect = on_connect
