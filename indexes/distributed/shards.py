"""ShardedTextIndex: one knowledge base split over S fixed shards, each a full TextIndex (SQLite,
FTS5, FAISS) in its own sub-folder, served in this process or by one Ray actor per shard.

    with ShardedTextIndex.open("kb/", "all-MiniLM-L6-v2", shards=4) as kb:          # in-process
        kb.upsert(docs)                            # each document to shard blake2b(id) % S
    with ShardedTextIndex.open("kb/", read_only=True, ray="auto") as kb:             # on Ray
        hits = kb.search("question", k=5)          # every shard asked, one ranking, TextIndex's Hits

A search embeds the query once (here), asks every shard for its dense and BM25 candidates with
raw scores, merges each list globally (inner products compare across shards; BM25 is rescored
from the shards' summed statistics, see shard_search.py), then fuses them exactly as TextIndex
does. On disk: `shards.json` (shard count, embedder, analyzer, routing hash) and `shard-000/`...
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Sequence

from indexes.analyzer import ANALYZER, get_analyzer
from indexes.distributed.shard_search import Candidates, ShardEmbedder, ShardServer, bm25_global
from indexes.embedders import Embedder, get_embedder
from indexes.hybrid import fuse
from indexes.text import Document, DocumentInfo, Hit, SearchMode
from polymodal.errors import EmbedderMismatch, InputError, PolymodalError, StoreCorrupt, StoreError
from polymodal.fsutil import atomic_write_json

__all__ = ["ShardedTextIndex", "shard_of", "is_sharded"]

FORMAT = 1
MANIFEST = "shards.json"
KIND = "sharded-text"


def shard_of(doc_id: str, shards: int) -> int:
    """The shard of `doc_id`: stable across processes and machines (Python's hash() is salted)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def is_sharded(path: str | Path) -> bool:
    return (Path(path).expanduser() / MANIFEST).is_file()


def _read_manifest(folder: Path) -> dict | None:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"knowledge base path is a file, not a folder: {folder}")
    path = folder / MANIFEST
    if not path.exists():
        if (folder / "manifest.json").exists():
            raise StoreError(f"{folder} is an unsharded text index, not a sharded knowledge base")
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        int(manifest["shards"]), str(manifest["embedder"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreCorrupt(f"unreadable {MANIFEST} in {folder}: {exc}") from None
    if manifest.get("kind") != KIND:
        raise StoreError(f"{folder}/{MANIFEST} is not a sharded knowledge base's manifest")
    return manifest


class _Local:
    """Shards served in this process."""

    def __init__(self, servers: list[ShardServer]) -> None:
        self.servers = servers
        # SQLite and FAISS release the GIL: shards are searched side by side, as actors would be
        self._pool = ThreadPoolExecutor(min(len(servers), 8), thread_name_prefix="shard") if len(servers) > 1 else None

    def call(self, method: str, args: Sequence[tuple] | tuple, only: Sequence[int] | None = None) -> list[Any]:
        idx = list(range(len(self.servers)) if only is None else only)
        jobs = [
            (getattr(self.servers[i], method), args[n] if isinstance(args, list) else args) for n, i in enumerate(idx)
        ]
        if self._pool is None or len(jobs) < 2 or method not in ("candidates", "hits"):  # writes: one at a time
            return [fn(*a) for fn, a in jobs]
        return [f.result() for f in [self._pool.submit(fn, *a) for fn, a in jobs]]

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for s in self.servers:
            s.close()


class ShardedTextIndex:
    """S TextIndex shards behind TextIndex's calls (see module doc)."""

    def __init__(self, folder: Path, manifest: dict, embedder: Embedder, backend: Any, read_only: bool) -> None:
        self.folder, self.manifest, self.embedder = folder, manifest, embedder
        self.shards = int(manifest["shards"])
        self.read_only = read_only
        self.analyze = get_analyzer(manifest["analyzer"])
        self._backend = backend
        self._closed = False

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        embedder: Embedder | str | None = None,
        *,
        shards: int | None = None,
        read_only: bool = False,
        create: bool = True,
        ray: str | None = None,
        embedder_backend: str = "onnx",
        chunk_tokens: int = 200,
        chunk_overlap: int = 30,
        max_restarts: int = 3,
    ) -> "ShardedTextIndex":
        """Open the sharded knowledge base at `path`, creating it with `shards` shards if absent.

        `ray`: None serves the shards in this process; "auto", "local" or "host:port" starts one
        Ray actor per shard on that cluster (polymodal.cluster.connect), restarted up to
        `max_restarts` times if it dies. The shard count is fixed at creation: another `shards`
        is refused, as is another embedder (EmbedderMismatch).
        """
        folder = Path(path).expanduser()
        manifest = _read_manifest(folder)
        if manifest is None:
            if read_only or not create:
                raise InputError(f"no sharded knowledge base at {folder}")
            if not shards or shards < 1:
                raise InputError("a new sharded knowledge base needs shards >= 1")
            if embedder is None:
                raise InputError(f"a new sharded knowledge base at {folder} needs an embedder")
        elif shards is not None and shards != int(manifest["shards"]):
            raise StoreError(
                f"{folder} has {manifest['shards']} shards, not {shards}: the shard count is fixed when it is "
                "created (rebuild it into a new folder to change it)"
            )
        ref = embedder if embedder is not None else manifest["embedder"]
        emb = get_embedder(ref, backend=embedder_backend) if isinstance(ref, str) else ref
        if manifest is not None and emb.name != manifest["embedder"]:
            raise EmbedderMismatch(
                f"sharded knowledge base {folder} was built with embedder '{manifest['embedder']}'; "
                f"it cannot be searched or extended with '{emb.name}'"
            )
        if manifest is None:
            manifest = cls._create(folder, shards or 1, emb, chunk_tokens, chunk_overlap)
        cls._check_shards(folder, manifest)
        subs = [str(folder / _shard_dir(i)) for i in range(int(manifest["shards"]))]
        if ray is None:
            backend: Any = _Local(_open_shards(subs, emb, read_only))
        else:
            from indexes.distributed.shard_actors import RayShards

            shard_emb = ShardEmbedder(emb.name, int(manifest["dim"]), embedder_backend)
            backend = RayShards(ray, subs, shard_emb, read_only, max_restarts)
        return cls(folder, manifest, emb, backend, read_only)

    @staticmethod
    def _create(folder: Path, shards: int, emb: Embedder, chunk_tokens: int, chunk_overlap: int) -> dict:
        from indexes.text import TextIndex

        folder.mkdir(parents=True, exist_ok=True)
        for i in range(shards):  # shards first, the manifest last: no manifest points at a missing shard
            TextIndex.open(
                folder / _shard_dir(i), emb, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, show_progress=False
            ).close()
        manifest = {
            "format": FORMAT,
            "kind": KIND,
            "shards": shards,
            "embedder": emb.name,
            "dim": int(emb.dim),
            "analyzer": ANALYZER,
            "routing": "blake2b-64(doc_id) % shards",
            "created": time.time(),
        }
        atomic_write_json(folder / MANIFEST, manifest)
        return manifest

    @staticmethod
    def _check_shards(folder: Path, manifest: dict) -> None:
        """Every shard present, readable, with the knowledge base's embedder and analyzer."""
        for i in range(int(manifest["shards"])):
            sub = folder / _shard_dir(i)
            try:
                m = json.loads((sub / "manifest.json").read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise StoreCorrupt(f"shard {i} of {folder} is missing ({sub.name}/manifest.json)") from None
            except (OSError, ValueError) as exc:
                raise StoreCorrupt(f"shard {i} of {folder} has an unreadable manifest: {exc}") from None
            if m.get("embedder") != manifest["embedder"] or m.get("dim") != manifest["dim"]:
                raise EmbedderMismatch(
                    f"shard {i} of {folder} holds embedder '{m.get('embedder')}', the knowledge base "
                    f"'{manifest['embedder']}'"
                )
            if m.get("analyzer") != manifest["analyzer"]:
                raise StoreError(
                    f"shard {i} of {folder} uses BM25 analyzer '{m.get('analyzer')}', not '{manifest['analyzer']}'"
                )

    def __enter__(self) -> "ShardedTextIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def save(self) -> None:
        """Persist every shard's FAISS view (writes already are in SQLite)."""
        self._check_writable()
        self._backend.call("save", ())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._backend.stop()

    # -- writing --------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"sharded knowledge base {self.folder} is open read-only")

    def _split(self, docs: Sequence[Document]) -> dict[int, list[Document]]:
        docs = list(docs)
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            raise InputError("duplicate document ids in one call")
        if any(not isinstance(i, str) or not i for i in ids):
            raise InputError("every document needs a non-empty string id")
        parts: dict[int, list[Document]] = {}
        for d in docs:
            parts.setdefault(shard_of(d.id, self.shards), []).append(d)
        return parts

    def _write(self, method: str, docs: Sequence[Document]) -> dict[str, int]:
        self._check_writable()
        parts = self._split(docs)
        if method == "add":  # all or nothing: refuse before any shard writes
            found = sorted(
                i
                for r in self._backend.call(
                    "existing", [([d.id for d in p],) for p in parts.values()], only=list(parts)
                )
                for i in r
            )
            if found:
                raise StoreError(f"document id(s) already in the index: {', '.join(found[:5])} (use upsert)")
        out: dict[str, int] = {}
        for r in self._backend.call(method, [(p,) for p in parts.values()], only=list(parts)):
            out.update(r)
        return {d.id: out[d.id] for d in docs}

    def add(self, docs: Sequence[Document]) -> dict[str, int]:
        """Add new documents (an id already stored raises StoreError); chunks stored per id."""
        return self._write("add", docs)

    def upsert(self, docs: Sequence[Document]) -> dict[str, int]:
        """Add documents, replacing a stored one with the same id (in its own shard)."""
        return self._write("upsert", docs)

    def delete(self, doc_ids: Sequence[str]) -> int:
        self._check_writable()
        parts: dict[int, list[str]] = {}
        for d in doc_ids:
            parts.setdefault(shard_of(d, self.shards), []).append(d)
        return sum(self._backend.call("delete", [(p,) for p in parts.values()], only=list(parts)))

    # -- reading --------------------------------------------------------------------------------
    def count(self) -> int:
        return sum(self._backend.call("count", ()))

    def count_chunks(self) -> int:
        return sum(self._backend.call("count_chunks", ()))

    def shard_counts(self) -> list[int]:
        return self._backend.call("count", ())

    def get_by_ids(self, doc_ids: Sequence[str]) -> list[Document]:
        """Documents by id, in the order asked; unknown ids are skipped."""
        parts: dict[int, list[str]] = {}
        for d in doc_ids:
            parts.setdefault(shard_of(d, self.shards), []).append(d)
        found = {
            d.id: d
            for r in self._backend.call("get_by_ids", [(p,) for p in parts.values()], only=list(parts))
            for d in r
        }
        return [found[d] for d in doc_ids if d in found]

    def list_documents(self, source_prefix: str = "") -> list[DocumentInfo]:
        docs = [d for r in self._backend.call("list_documents", (source_prefix,)) for d in r]
        return sorted(docs, key=lambda d: (d.source, d.doc_id))

    def content_hashes(self, source_prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        for r in self._backend.call("content_hashes", (source_prefix,)):
            out.update(r)
        return out

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = "hybrid",
        filter: dict[str, Any] | None = None,
        fusion: Literal["rrf", "weighted"] = "rrf",
        alpha: float = 0.5,
        depth: int | None = None,
        bm25_stats: Literal["global", "shard"] = "global",
    ) -> list[Hit]:
        """Top-k chunks over every shard, as `TextIndex.search` ranks them on one index.

        `depth`: BM25 matches each shard offers by its own scores before the global rescoring
        (default twice the candidates the fusion takes); dense candidates are exact at any depth.
        `bm25_stats`: "global" scores BM25 with the statistics of all shards (as one index would);
        "shard" with each shard's own (for comparison: what merging the shards' FTS5 scores gives).
        """
        if mode not in ("hybrid", "dense", "bm25"):
            raise InputError(f"unknown search mode '{mode}' (hybrid, dense or bm25)")
        if k <= 0 or not query.strip():
            return []
        n = max(k * 4, 20) if mode == "hybrid" else k
        qvec = self.embedder.embed_query(query) if mode != "bm25" else None
        terms = list(dict.fromkeys(self.analyze(query)))[:64] if mode != "dense" else []
        parts: list[Candidates] = self._backend.call("candidates", (qvec, terms, n, depth or 2 * n, filter))
        dense = dict(sorted(((s, i), sc) for s, p in enumerate(parts) for i, sc in p.dense))
        dense = dict(sorted(dense.items(), key=lambda kv: -kv[1])[:n])
        bm = bm25_global(parts, per_shard=bm25_stats == "shard")
        bm = dict(sorted(bm.items(), key=lambda kv: -kv[1])[:n])
        scores = fuse(dense, bm, mode, fusion, alpha)  # type: ignore[arg-type]  # keys: (shard, id)
        ranked = sorted(scores, key=lambda key: -scores[key])[:k]
        wanted: dict[int, list[int]] = {}
        for s, i in ranked:
            wanted.setdefault(s, []).append(i)
        rows = dict(zip(wanted, self._backend.call("hits", [(v,) for v in wanted.values()], only=list(wanted))))
        out = []
        for key in ranked:
            hit = rows[key[0]].get(key[1])
            if hit is not None:  # deleted between the two calls
                out.append(replace(hit, score=float(scores[key]), dense_score=dense.get(key), bm25_score=bm.get(key)))
        return out


def _shard_dir(i: int) -> str:
    return f"shard-{i:03d}"


def _open_shards(subs: list[str], emb: Embedder, read_only: bool) -> list[ShardServer]:
    servers: list[ShardServer] = []
    try:
        for i, sub in enumerate(subs):
            try:
                servers.append(ShardServer(sub, emb, read_only, create=False))
            except PolymodalError as exc:
                raise type(exc)(f"shard {i}: {exc}") from None
    except BaseException:
        for s in servers:
            s.close()
        raise
    return servers
