"""Fakes and checks for the distributed tests (shipped, so a user's clone runs them).

`RecordingEmbedder`: the hashing fake, named like it, that appends how many texts each call embeds
to a log file (from any process of any node on this machine) and, given `exit_marker`, kills its
own process on its first call while the marker does not exist (a worker dying mid-ingest).
`kb_snapshot`: everything an index stores, in a form two indexes can be compared by.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from indexes.embedders import HashEmbedder

__all__ = ["RecordingEmbedder", "embedded_count", "kb_snapshot", "kill_workers"]


class RecordingEmbedder(HashEmbedder):
    def __init__(
        self, dim: int = 64, log: str | Path | None = None, exit_marker: str | Path | None = None, delay: float = 0.0
    ) -> None:
        super().__init__(dim)
        self.log, self.exit_marker, self.delay = log, exit_marker, delay

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if self.delay:
            import time

            time.sleep(self.delay)
        if self.exit_marker is not None and not Path(self.exit_marker).exists():
            Path(self.exit_marker).touch()
            os._exit(1)  # the worker dies without a word, as on a lost node
        if self.log is not None and texts:
            fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, f"{len(texts)}\n".encode())
            finally:
                os.close(fd)
        return super().embed_documents(texts)


def kill_workers(title: str) -> int:
    """SIGKILL this cluster's Ray worker processes whose title contains `title` (those started with
    this process's Ray token: never another cluster's). Returns how many were killed."""
    import signal

    token = os.environ.get("RAY_AUTH_TOKEN", "").encode()
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::") and title.encode() in cmd and token and b"RAY_AUTH_TOKEN=" + token in env:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def embedded_count(log: str | Path) -> int:
    """Texts embedded by every RecordingEmbedder writing to `log`."""
    p = Path(log)
    return sum(int(line) for line in p.read_text().split()) if p.exists() else 0


def kb_snapshot(path: str | Path) -> dict[str, Any]:
    """Documents, chunks with offsets and locations, BM25 rows and vectors, keyed by document id and
    chunk order (row ids differ between two runs that store the same thing)."""
    from indexes.text import TextIndex

    with TextIndex.open(path, read_only=True) as kb:
        c = kb._conn
        docs = sorted(
            tuple(r)
            for r in c.execute("SELECT doc_id, source, type, tags, content_hash, text, metadata FROM documents")
        )
        rows = c.execute(
            "SELECT c.id, c.doc_id, c.ord, c.start, c.end, c.heading, c.text, c.metadata, f.tokens "
            "FROM chunks c JOIN chunks_fts f ON f.rowid = c.id"
        ).fetchall()
        vecs = kb.store.vectors([r[0] for r in rows])
        chunks = sorted(tuple(r[1:]) for r in rows)
        vectors = {(r[1], r[2]): vecs[r[0]] for r in rows}
        return {
            "documents": [tuple(d) for d in docs],
            "chunks": chunks,
            "vectors": vectors,
            "embedder": kb.embedder.name,
        }
