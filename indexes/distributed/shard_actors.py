"""The shards of a ShardedTextIndex as Ray actors: one `ShardServer` actor per shard, restarted by
Ray when its process dies (`max_restarts`; reads are retried on the new one), and a failure the
restarts cannot cover named by its shard in one line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import indexes
from indexes.distributed.shard_search import ShardEmbedder, ShardServer
from polymodal.cluster import connect
from polymodal.errors import PolymodalError, StoreError

__all__ = ["RayShards"]

READS = {
    "candidates",
    "hits",
    "existing",
    "count",
    "count_chunks",
    "get_by_ids",
    "list_documents",
    "content_hashes",
    "ping",
}


def _code_env() -> dict[str, Any]:
    """Actors import this checkout's code first (the one the router runs), whatever is installed."""
    root = str(Path(indexes.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


class RayShards:
    """One actor per shard on the cluster at `address` (see polymodal.cluster.connect)."""

    def __init__(
        self, address: str, folders: list[str], emb: ShardEmbedder, read_only: bool, max_restarts: int
    ) -> None:
        self.ray = connect(address)
        self.folders = folders
        remote = self.ray.remote(ShardServer)
        self.actors = [
            remote.options(
                max_restarts=max_restarts,
                num_cpus=0,  # shards wait on SQLite and FAISS for a query at a time: placement, not CPU
                scheduling_strategy="SPREAD",
                runtime_env=_code_env(),
            ).remote(f, emb, read_only, False, True)
            for f in folders
        ]
        try:
            self._get([a.ping.remote() for a in self.actors], range(len(self.actors)))
        except BaseException:
            self.stop()
            raise

    def call(self, method: str, args: Sequence[tuple] | tuple, only: Sequence[int] | None = None) -> list[Any]:
        idx = list(range(len(self.actors)) if only is None else only)
        refs = []
        for n, i in enumerate(idx):
            m = getattr(self.actors[i], method)
            if method in READS:  # safe to run again: wait out the restarts (an actor out of them fails it)
                m = m.options(max_task_retries=-1)
            refs.append(m.remote(*(args[n] if isinstance(args, list) else args)))
        return self._get(refs, idx)

    def _get(self, refs: list[Any], idx: Sequence[int]) -> list[Any]:
        out = []
        for ref, i in zip(refs, idx):
            try:
                out.append(self.ray.get(ref))
            except self.ray.exceptions.RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, PolymodalError):
                    raise type(cause)(f"shard {i} ({Path(self.folders[i]).name}): {cause}") from None
                raise
            except self.ray.exceptions.RayActorError as exc:
                first = (str(exc).strip().splitlines() or ["died"])[0]
                raise StoreError(
                    f"shard {i} ({self.folders[i]}) failed: its Ray actor is gone ({first[:160]})"
                ) from None
        return out

    def stop(self) -> None:
        """Close every shard (a writer saves its FAISS view), then end the actors."""
        closing = [a.close.remote() for a in self.actors]
        try:
            if closing:
                self.ray.wait(closing, num_returns=len(closing), timeout=30)
        except Exception:  # noqa: BLE001 - a dead actor has nothing to save; the next open repairs
            pass
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001 - an actor already gone needs no stopping
                pass
        self.actors = []
