"""Ray, the one distributed engine polymodal runs on (extra `distributed`): connecting to a cluster
and starting a small local one.

    from polymodal.cluster import connect, LocalCluster
    connect("auto")                       # RAY_ADDRESS if set, else a fresh in-process local cluster
    connect("10.0.0.5:6379")              # an existing cluster (`ray start --head` on that node)
    with LocalCluster(nodes=2, cpus_per_node=1) as c:   # `ray start --head` + `ray start --address`
        connect(c.address)

Clusters started here have the dashboard and usage statistics off and token authentication on; a
real cluster is the operator's `ray start` on each node (README "Scale out on Ray").
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError, MissingExtra

__all__ = ["connect", "disconnect", "LocalCluster", "require_ray", "ray_available"]

LOOPBACK = "127.0.0.1"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def require_ray() -> Any:
    """The `ray` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise MissingExtra("distributed", "ray", "running on a Ray cluster") from None
    return ray


def connect(address: str | None = "auto", *, num_cpus: int | None = None) -> Any:
    """Connect this process to Ray (idempotent) and return the `ray` module.

    `address` None/"auto": the cluster in RAY_ADDRESS when set, else a new local cluster in this
    process (loopback only). "local": always a new local cluster. Anything else ("host:port",
    "ray://host:10001"): that cluster, which must be running.
    """
    ray = require_ray()
    if address in (None, "", "auto"):
        address = os.environ.get("RAY_ADDRESS") or "local"
    if address != "local":
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "warning", "log_to_driver": False}
    if address == "local":
        kwargs.update(num_cpus=num_cpus, _node_ip_address=LOOPBACK)
        _use_token(new_token())  # this cluster's own token, held in memory (none written to ~/.ray)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {first}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's minutes of retries, when nothing listens at `address`."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"not a Ray cluster address: {address!r} (expected host:port, ray://host:port or auto)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}") from None


def disconnect() -> None:
    if ray_available():
        import ray

        if ray.is_initialized():
            ray.shutdown()


def node_ip() -> str:
    """The address `ray start` gives this node: Ray 2.60 turns 127.0.0.1 into it (so other nodes can
    reach it), and its cluster ports listen on every interface: see README "Scale out on Ray"."""
    from ray._private.services import get_node_ip_address

    return str(get_node_ip_address())


def new_token() -> dict[str, str]:
    """Environment that turns Ray's token authentication on with a fresh random token."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def _use_token(auth: dict[str, str]) -> None:
    """Make this process present `auth`'s token: Ray reads the mode from its config, refreshed here
    the way Ray's own `ray.init()` does when it turns token authentication on."""
    os.environ.update(auth)
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A real multi-node Ray cluster on this machine: one `ray start --head` and `nodes - 1`
    `ray start --address=...` worker processes, each its own raylet with `cpus_per_node` CPUs, on
    loopback, in a private temp dir. `stop()` (or leaving the `with` block) ends exactly these
    processes, never another cluster on the machine."""

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, object_store_mb: int = 256) -> None:
        if nodes < 1:
            raise ConfigError("a cluster needs at least one node")
        self.nodes, self.cpus_per_node, self.object_store_mb = nodes, cpus_per_node, object_store_mb
        self.address = ""
        self._procs: list[subprocess.Popen] = []
        self._tmp = ""
        # token authentication: only holders of this cluster's token (its processes, this driver) talk to it
        self._auth = new_token()

    def _ray_cli(self) -> str:
        exe = Path(sys.executable).with_name("ray")
        return str(exe) if exe.exists() else shutil.which("ray") or "ray"

    def _start(self, *args: str) -> subprocess.Popen:
        cmd = [self._ray_cli(), "start", "--block", f"--num-cpus={self.cpus_per_node}", "--disable-usage-stats"]
        cmd += [f"--node-ip-address={LOOPBACK}", f"--object-store-memory={self.object_store_mb * 2**20}", *args]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **self._auth}
        env.pop("RAY_ADDRESS", None)
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self._procs.append(proc)
        return proc

    def start(self, timeout: float = 90.0) -> "LocalCluster":
        """Start the nodes and connect this process to the cluster (waiting until every node is up)."""
        try:
            return self._start_all(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_all(self, timeout: float) -> "LocalCluster":
        ray = require_ray()
        # a short root: Ray's Unix socket paths must stay under ~107 characters
        self._tmp = tempfile.mkdtemp(prefix="pmray", dir="/tmp")
        port = _free_port()
        self.address = f"{node_ip()}:{port}"
        self._start("--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self._tmp}")
        self._wait(lambda: self._port_open(port), timeout, "the head node")
        for _ in range(self.nodes - 1):
            self._start(f"--address={self.address}")
        _use_token(self._auth)
        connect(self.address)
        self._wait(lambda: sum(n["Alive"] for n in ray.nodes()) >= self.nodes, timeout, f"{self.nodes} nodes")
        return self

    def _port_open(self, port: int) -> bool:
        self._check_running()
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex((node_ip(), port)) == 0

    def _check_running(self) -> None:
        for p in self._procs:
            if p.poll() is not None:
                err = (p.stderr.read() if p.stderr else "").strip().splitlines()
                raise ConfigError(f"ray start exited ({p.returncode}): {err[-1] if err else 'no message'}")

    @staticmethod
    def _wait(ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise ConfigError(f"local Ray cluster: {what} not up after {timeout:.0f}s")

    def stop(self) -> None:
        """Disconnect this process and end the cluster's processes."""
        disconnect()
        for p in reversed(self._procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self._procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self._procs.clear()
        if self._tmp:
            self._kill_leftovers()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        """Ray's own processes (gcs, raylet, workers) of this cluster: those naming its temp dir or port."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self._tmp in cmd or self.address in cmd:
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                except OSError:
                    pass

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
