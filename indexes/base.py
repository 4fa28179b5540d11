"""The index contract (`Index`) and the base every index kind is written on (`BaseIndex`).

An index is a folder: `manifest.json` (kind, the model that made its vectors and their dimension),
`index.sqlite` (the kind's rows and, in `VectorTable`s, their vectors: the truth) and one FAISS file
per vector table (a rebuildable view). The base owns what every kind shares: opening (manifest
checks: kind, model name, dimension), one writer at a time across threads and processes,
transactions that keep SQLite and FAISS in step, picking up other writers' commits, save and close.

A new kind subclasses `BaseIndex`: it names its `kind`, `noun` and `model_role`, its `SCHEMA` and
its vector `TABLES`, writes a typed `open()` on `_find_manifest` + `_adopt_model`, and writes rows
inside `with self._transaction() as tx:` and reads inside `with self._reading():`.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Iterator, Protocol, Self, Sequence, runtime_checkable

import numpy as np

from indexes.ann import IndexParams
from indexes.store import VectorTable, connect_sqlite
from polymodal.errors import EmbedderMismatch, InputError, StoreCorrupt, StoreError
from polymodal.fsutil import atomic_write_json

__all__ = ["Index", "BaseIndex", "Transaction", "read_manifest", "exclusive_writer"]


@runtime_checkable
class Index(Protocol):
    """What any index kind offers the tools and the CLI. Items and queries are the kind's own
    (documents and text for `TextIndex`, image files and text or images for `ImageIndex`)."""

    folder: Path
    read_only: bool
    manifest: dict

    @classmethod
    def open(
        cls,
        path: str | Path,
        model: Any = None,
        /,
        *,
        read_only: bool = False,
        create: bool = True,
        params: IndexParams | None = None,
    ) -> "Index": ...

    def add(self, items: Sequence[Any], /) -> Any: ...

    def search(self, query: Any, /, *, k: int = 5) -> list[Any]: ...

    def delete(self, keys: Sequence[Any], /) -> int: ...

    def count(self) -> int: ...

    def save(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Index": ...

    def __exit__(self, *exc: Any) -> None: ...


def read_manifest(folder: Path, kind: str, noun: str) -> dict | None:
    """The manifest of the index folder `folder` (None when there is none yet), checked to be of
    `kind`. A path that is a file, an unreadable manifest or another kind is a clear error."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"index path is a file, not a folder: {folder}")
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreCorrupt(f"unreadable manifest in {folder}: {exc}") from exc
    if manifest.get("kind") != kind:
        raise StoreError(f"{folder} is a '{manifest.get('kind')}' index, not {_a(noun)}")
    return manifest


@contextmanager
def exclusive_writer(folder: Path, lock: threading.RLock, read_only: bool, noun: str = "index") -> Iterator[None]:
    """Thread lock + an exclusive file lock on `folder`: one writer across threads and processes.
    The kernel drops the file lock when a writer dies, so a killed writer never blocks the next."""
    if read_only:
        raise StoreError(f"{noun} {folder} is open read-only")
    with lock:
        with open(Path(folder) / ".write.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class Transaction:
    """The vector side of one SQLite transaction: written to SQLite now, to FAISS after the commit.
    Every vector table of an index is keyed by the same row ids."""

    def __init__(self, conn: Any, tables: dict[str, VectorTable]) -> None:
        self.conn = conn
        self.tables = tables
        self.added: list[tuple[str, Sequence[int], np.ndarray]] = []
        self.removed: list[int] = []

    def write(self, table: str, ids: Sequence[int], vecs: np.ndarray) -> None:
        if len(ids):
            self.tables[table].write(ids, vecs)
            self.added.append((table, ids, vecs))

    def erase(self, ids: Sequence[int]) -> None:
        """Remove these rows' vectors from every table."""
        if len(ids):
            for t in self.tables.values():
                t.erase(ids)
            self.removed.extend(ids)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


class BaseIndex:
    """A folder index: manifest, SQLite rows and `VectorTable`s, one writer at a time (see module doc)."""

    kind: ClassVar[str]  # the manifest's "kind"
    noun: ClassVar[str]  # in messages: "text index"
    model_role: ClassVar[str]  # the manifest key naming the model: "embedder", "encoder"
    FORMAT: ClassVar[int] = 1
    SCHEMA: ClassVar[str] = ""  # SQL run on every writable open (CREATE ... IF NOT EXISTS)
    TABLES: ClassVar[dict[str, str]] = {"vectors": "dim"}  # vector table -> manifest key of its dimension

    def __init__(self, folder: Path, manifest: dict, read_only: bool, params: IndexParams) -> None:
        self.folder = folder
        self.manifest = manifest
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn = connect_sqlite(folder / "index.sqlite", read_only=read_only)
        if not read_only and self.SCHEMA:
            self._conn.executescript(self.SCHEMA)
        self.tables = {
            name: VectorTable(folder, self._conn, int(manifest[key]), name, params, read_only)
            for name, key in self.TABLES.items()
            if manifest.get(key)
        }
        self.repair_report = {name: t.load() for name, t in self.tables.items()}
        self._seen = self._generations()
        self._closed = False

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def _find_manifest(cls, path: str | Path, read_only: bool, create: bool) -> tuple[Path, dict | None]:
        """The index folder and its manifest (None: a new index may be created there)."""
        folder = Path(path).expanduser()
        manifest = read_manifest(folder, cls.kind, cls.noun)
        if manifest is None and (read_only or not create):
            raise InputError(f"no {cls.noun} at {folder}")
        return folder, manifest

    @classmethod
    def _adopt_model(cls, folder: Path, manifest: dict | None, model: Any, **fields: Any) -> dict:
        """Check `model` against the manifest (its name, then its dimension), or create the folder
        and its manifest (recording `fields` too) for a new index. Returns the manifest."""
        if manifest is None:
            folder.mkdir(parents=True, exist_ok=True)
            manifest = {
                "format": cls.FORMAT,
                "kind": cls.kind,
                cls.model_role: model.name,
                "dim": int(model.dim),
                "created": time.time(),
                **fields,
            }
            atomic_write_json(folder / "manifest.json", manifest)
        elif model.name != manifest[cls.model_role]:
            raise EmbedderMismatch(
                f"{cls.noun} {folder} was built with {cls.model_role} '{manifest[cls.model_role]}' (dim "
                f"{manifest['dim']}); it cannot be searched or extended with '{model.name}': open it without "
                f"{_a(cls.model_role)}, or build a new index in another folder"
            )
        if int(model.dim) != manifest["dim"]:
            raise EmbedderMismatch(
                f"{cls.model_role} '{model.name}' gives dim {model.dim}, {cls.noun} {folder} "
                f"holds dim {manifest['dim']}"
            )
        return manifest

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Save (when writable) and close; harmless to call twice."""
        with self._lock:
            if self._closed:
                return
            if not self.read_only:
                self.save()
            self._conn.close()
            self._closed = True

    def save(self) -> None:
        """Persist every FAISS file under the current SQLite generation (after picking up other
        writers' commits, or a file would claim a generation it does not hold)."""
        with self._write_lock():
            self._sync()
            for t in self.tables.values():
                t.save()

    # -- writing and reading --------------------------------------------------------------------
    def _check_writable(self) -> None:
        """Fail before any work (embedding, thumbnails) that a read-only index could not store."""
        if self.read_only:
            raise StoreError(f"{self.noun} {self.folder} is open read-only")

    def _write_lock(self) -> Any:
        return exclusive_writer(self.folder, self._lock, self.read_only, self.noun)

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        """One writer's transaction, after picking up other writers' commits. Rows go through
        `tx.conn`, vectors through `tx.write` / `tx.erase`; FAISS follows once SQLite has committed,
        so a crash at any point leaves the last commit (repaired from SQLite on the next open)."""
        with self._write_lock():
            self._sync()
            tx = Transaction(self._conn, self.tables)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield tx
                if tx.changed:
                    for t in self.tables.values():
                        t.bump_generation()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            for t in self.tables.values():
                t.remove(tx.removed)
            for name, ids, vecs in tx.added:
                self.tables[name].add(ids, vecs)
            self._seen = self._generations()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Read under the index lock, after picking up other writers' commits."""
        with self._lock:
            self._sync()
            yield

    def _generations(self) -> tuple[int, ...]:
        return tuple(t.sqlite_generation() for t in self.tables.values())

    def _sync(self) -> None:
        """Pick up writes committed by another process (or another object on the same folder)."""
        gens = self._generations()
        if gens != self._seen:
            for t in self.tables.values():
                t.repair()
            self._seen = gens


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
