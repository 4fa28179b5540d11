"""Ray fixtures: every test asking for `ray_env` runs twice, on an in-process cluster (`ray.init`)
and on a real two-node cluster on this machine (`ray start --head` plus a second `ray start
--address=...`, one CPU each, token authentication, dashboard and usage stats off). Session-scoped:
pytest groups the tests by cluster, so each starts once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("ray", reason="Ray is not installed (extra 'distributed'; make test installs it)")


@dataclass
class RayEnv:
    kind: str  # "in-process" or "two-node"
    address: str  # what a CLI or a child process passes to connect()
    nodes: int


@pytest.fixture(scope="session", params=["in-process", "two-node"])
def ray_env(request):
    from polymodal.cluster import LocalCluster, connect, disconnect

    disconnect()
    if request.param == "in-process":
        ray = connect("local", num_cpus=2)
        yield RayEnv("in-process", ray.get_runtime_context().gcs_address, 1)
        disconnect()
        return
    cluster = LocalCluster(nodes=2, cpus_per_node=1).start()
    try:
        yield RayEnv("two-node", cluster.address, 2)
    finally:
        cluster.stop()
