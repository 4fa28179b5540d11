"""Device code must install on a Raspberry Pi: numpy, pillow, ai_edge_litert, paho-mqtt only."""

import importlib
import subprocess
import sys

import pytest

DEVICE_MODULES = [
    "edge.agent",
    "edge.fleet",
    "edge.capabilities",
    "edge.runtime",
    "edge.faces",
    "edge.sensors",
    "edge.camera",
    "edge.models",
    "edge.protocol",
    "edge.mqtt",
    "edge.client",
    "edge.registry",
    "edge.broker",
    "edge.errors",
]


def test_device_side_imports_nothing_from_the_rest_of_polymodal_or_heavy_frameworks():
    code = (
        "import sys; "
        + "; ".join(f"import {m}" for m in DEVICE_MODULES)
        + "; bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'polymodal', 'tools', 'indexes', 'orchestrator', 'torch', 'tensorflow', 'keras', 'skimage', 'sklearn'}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("module", DEVICE_MODULES + ["edge.convert", "edge.agreement", "tools.edge_query"])
def test_exported_names_exist(module):
    mod = importlib.import_module(module)
    assert mod.__all__ and all(hasattr(mod, name) for name in mod.__all__)
