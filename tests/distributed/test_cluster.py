"""The clusters the distributed tests run on are what they claim to be."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.ray


def test_the_cluster_has_its_nodes_and_runs_tasks_on_each(ray_env):
    import ray

    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == ray_env.nodes

    @ray.remote(num_cpus=1)
    def where() -> tuple[str, int]:
        import time

        time.sleep(0.5)
        return ray.get_runtime_context().get_node_id(), os.getpid()

    seen = ray.get([where.remote() for _ in range(4)])
    assert len({node for node, _ in seen}) == ray_env.nodes
    assert all(pid != os.getpid() for _, pid in seen)


def test_connecting_to_nothing_is_a_one_line_error_in_seconds():
    from polymodal.cluster import connect
    from polymodal.errors import ConfigError

    for bad in ("127.0.0.1:1", "no-port-here"):
        with pytest.raises(ConfigError) as err:
            connect(bad)
        assert "\n" not in str(err.value)


def test_the_in_process_cluster_writes_no_token_to_the_home_folder(tmp_path):
    import subprocess
    import sys

    code = "from polymodal.cluster import connect, disconnect\nconnect('local', num_cpus=1)\ndisconnect()\n"
    env = {**__import__("os").environ, "HOME": str(tmp_path)}
    env.pop("RAY_AUTH_MODE", None), env.pop("RAY_AUTH_TOKEN", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=180, capture_output=True)
    assert not (tmp_path / ".ray").exists()
