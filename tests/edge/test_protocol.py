import json

import pytest

from edge.errors import RequestError
from edge.protocol import (
    MAX_REQUEST_BYTES,
    Request,
    check_device_id,
    decode_request,
    device_topic,
    encode,
    error_reply,
    expiry_interval,
    ok_reply,
    request_payload,
)


def test_decode_request_accepts_a_well_formed_request():
    cap, params, deadline = decode_request(encode({"capability": "classify", "params": {"top_k": 2}}))
    assert (cap, params, deadline) == ("classify", {"top_k": 2}, None)
    assert decode_request(b'{"capability": "snapshot", "params": null}') == ("snapshot", {}, None)


def test_a_request_carries_its_deadline_and_expires_after_it():
    request = decode_request(request_payload("readings", {"n": 3}, timeout=2.5, now=1000.0))
    assert request == Request("readings", {"n": 3}, 1002.5)
    assert not request.expired(now=1002.5) and request.expired(now=1002.6)
    assert not decode_request(b'{"capability": "snapshot"}').expired()  # no deadline: never expires
    assert [expiry_interval(t) for t in (0.2, 1.0, 2.5, 10)] == [1, 1, 3, 10]  # never shorter than the wait


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"not json", "bad_request"),
        (b"\xff\xfe", "bad_request"),
        (b"[1, 2]", "bad_request"),
        (b'{"params": {}}', "bad_request"),
        (b'{"capability": "", "params": {}}', "bad_request"),
        (b'{"capability": "classify", "params": [1]}', "bad_request"),
        (json.dumps({"capability": "x", "params": {str(i): i for i in range(40)}}).encode(), "bad_request"),
        (b'{"capability": "classify", "pad": "' + b"a" * MAX_REQUEST_BYTES + b'"}', "too_large"),
        (b'{"capability": "classify", "deadline": "soon"}', "bad_request"),
        (b'{"capability": "classify", "deadline": true}', "bad_request"),
        (b'{"capability": "classify", "deadline": NaN}', "bad_request"),
    ],
)
def test_decode_request_rejects_bad_payloads_with_a_code(payload, code):
    with pytest.raises(RequestError) as err:
        decode_request(payload)
    assert err.value.code == code


def test_device_ids_are_safe_topic_levels():
    assert check_device_id("garden-cam_2") == "garden-cam_2"
    for bad in ("", "Garden", "a/b", "+", "#", "x" * 80, "a b"):
        with pytest.raises(ValueError):
            check_device_id(bad)
    assert device_topic("p", "cam", "request") == "p/devices/cam/request"


def test_replies_carry_provenance_and_one_line_errors():
    ok = ok_reply("cam", "classify", "m", {"a": 1}, 1.23456, 2.5)
    assert ok["ok"] and ok["device"] == "cam" and ok["model"] == "m" and ok["ts"] > 0
    err = error_reply("cam", "classify", "bad_param", "line one\nline two")
    assert not err["ok"] and err["error"] == {"code": "bad_param", "message": "line one line two"}
    with pytest.raises(ValueError):
        encode({"x": float("nan")})
