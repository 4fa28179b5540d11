"""The wire protocol between devices and the orchestrator: topic names, JSON messages, limits.

<prefix>/devices/<id>/announce   retained: who the device is, capabilities, models (device writes)
<prefix>/devices/<id>/status     retained: online/offline + heartbeat; the last will says offline
<prefix>/devices/<id>/request    requests (orchestrator writes, only that device reads)
<prefix>/clients/<user>/<client> replies, addressed by MQTT v5 ResponseTopic + CorrelationData

A request expires when the orchestrator stops waiting for it: the broker drops it after its MQTT v5
MessageExpiryInterval, and the device drops one whose body `deadline` (epoch seconds) has passed,
answering nothing, so a device that was paused never runs a request nobody waits for any more.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any, NamedTuple

from edge.errors import RequestError

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_REQUEST_BYTES",
    "MAX_PARAMS",
    "PROTOCOL_VERSION",
    "device_topic",
    "response_topic",
    "check_device_id",
    "encode",
    "Request",
    "request_payload",
    "expiry_interval",
    "decode_request",
    "ok_reply",
    "error_reply",
]

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "polymodal"
MAX_REQUEST_BYTES = 512 * 1024  # an inline image (base64 JPEG) fits; anything larger is refused
MAX_PARAMS = 16
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_device_id(device_id: str) -> str:
    """Device ids become topic levels and broker usernames: keep them to [a-z0-9_-]."""
    if not isinstance(device_id, str) or not _ID.match(device_id):
        raise ValueError(f"device id {device_id!r} must match {_ID.pattern}")
    return device_id


def device_topic(prefix: str, device_id: str, leaf: str) -> str:
    return f"{prefix}/devices/{device_id}/{leaf}"


def response_topic(prefix: str, username: str, client_id: str) -> str:
    return f"{prefix}/clients/{username}/{client_id}"


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


class Request(NamedTuple):
    capability: str
    params: dict[str, Any]
    deadline: float | None = None  # epoch seconds after which nobody waits for the answer

    def expired(self, now: float | None = None) -> bool:
        return self.deadline is not None and (time.time() if now is None else now) > self.deadline


def request_payload(capability: str, params: dict[str, Any], timeout: float, now: float | None = None) -> bytes:
    """A request body: the capability, its params, when it was sent and its deadline (sent + timeout)."""
    now = time.time() if now is None else now
    return encode({"capability": capability, "params": params, "ts": now, "deadline": now + timeout})


def expiry_interval(timeout: float) -> int:
    """MessageExpiryInterval (whole seconds, at least 1) for a request waited on for `timeout` s:
    rounded up, so the broker never drops a request the orchestrator still waits for."""
    return max(1, math.ceil(timeout))


def decode_request(payload: bytes) -> Request:
    """Validate a request payload; return its `Request` or raise `RequestError`."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise RequestError("too_large", f"request is {len(payload)} bytes; the limit is {MAX_REQUEST_BYTES}")
    try:
        msg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("bad_request", "request is not valid JSON") from None
    if not isinstance(msg, dict):
        raise RequestError("bad_request", "request must be a JSON object")
    capability = msg.get("capability")
    params = msg.get("params", {})
    if not isinstance(capability, str) or not capability:
        raise RequestError("bad_request", "request needs a 'capability' string")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError("bad_request", "'params' must be an object")
    if len(params) > MAX_PARAMS:
        raise RequestError("bad_request", f"at most {MAX_PARAMS} params")
    deadline = msg.get("deadline")
    if deadline is not None and (
        isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not math.isfinite(deadline)
    ):
        raise RequestError("bad_request", "'deadline' must be a number (epoch seconds)")
    return Request(capability, params, None if deadline is None else float(deadline))


def ok_reply(
    device_id: str, capability: str, model: str, data: dict[str, Any], inference_ms: float, device_ms: float
) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "ok": True,
        "device": device_id,
        "capability": capability,
        "model": model,
        "ts": time.time(),
        "inference_ms": round(inference_ms, 4),
        "device_ms": round(device_ms, 4),
        "data": data,
    }


def error_reply(device_id: str, capability: str, code: str, message: str, device_ms: float = 0.0) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "ok": False,
        "device": device_id,
        "capability": capability,
        "ts": time.time(),
        "device_ms": round(device_ms, 4),
        "error": {"code": code, "message": " ".join(str(message).split())[:300]},
    }
