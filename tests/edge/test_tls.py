"""Optional TLS settings pass through to mosquitto, the devices and the orchestrator client."""

import shutil
import subprocess

import pytest

from edge.broker import MosquittoBroker
from edge.client import MqttDeviceClient
from edge.errors import BrokerUnavailable
from edge.fleet import DeviceSpec, SimulatedFleet
from edge.mqtt import BrokerSettings

pytestmark = pytest.mark.broker


@pytest.fixture
def self_signed(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_devices_and_orchestrator_talk_over_tls(broker, self_signed):  # `broker`: skips without mosquitto
    cert, key = self_signed
    spec = DeviceSpec("greenhouse", "tls-node")
    with MosquittoBroker(devices=[spec.id], tls_cert=cert, tls_key=key, tls_ca=cert) as tls_broker:
        with SimulatedFleet([spec], tls_broker.host, tls_broker.port, tls_broker.passwords, tls_ca=cert):
            with MqttDeviceClient(tls_broker.settings()) as client:
                assert client.settings.tls_ca == cert
                assert client.registry.wait_for(lambda r: (d := r.get("tls-node")) is not None and d.online, 30)
                assert len(client.request("tls-node", "readings", {"n": 4}, timeout=10).data["values"]) == 4
        plain = BrokerSettings(tls_broker.host, tls_broker.port, "orchestrator", tls_broker.password("orchestrator"))
        with pytest.raises(BrokerUnavailable):
            MqttDeviceClient(plain).connect(3)
