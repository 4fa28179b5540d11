"""`polymodal ingest` and `polymodal kb create|list|delete|search`: the knowledge base from the shell
(`kb create --shards S` makes a sharded one, which list, delete, search and `ask --kb` recognise)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.cli._common import add_json_flag, add_ray_flag, config_from_args, emit, non_negative_int, positive_int
from polymodal.errors import InputError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(sub.add_parser("ingest", help="ingest files/folders into a knowledge base"))
    p.add_argument("paths", nargs="+", help="files or folders (.txt .md .html .pdf .docx)")
    p.add_argument("--kb", default=None, help="knowledge-base folder (default: [kb] path, ~/.polymodal/kb)")
    p.add_argument("--sync", action="store_true", help="also delete documents whose files are gone")
    p.add_argument("--tag", action="append", default=[], help="tag every ingested document (repeatable)")
    p.add_argument("--embedder", default=None, help="embedder for a new knowledge base (default: auto by language)")
    p.add_argument("--chunk-tokens", type=positive_int, default=None)
    p.add_argument("--overlap", type=non_negative_int, default=None)
    p.add_argument("--no-progress", action="store_true")
    add_ray_flag(p, "read, chunk and embed")
    p.add_argument("--actors", type=positive_int, default=2, help="with --ray: embedding actors (one CPU each)")
    p.set_defaults(func=cmd_ingest)

    kb = sub.add_parser("kb", help="inspect a knowledge base")
    kbs = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    p = add_json_flag(kbs.add_parser("create", help="create an empty knowledge base (sharded with --shards)"))
    p.add_argument("--kb", default=None)
    p.add_argument("--shards", type=positive_int, default=None, help="S fixed shards, documents routed by id")
    p.add_argument("--embedder", default=None, help="default: [embedder] model")
    p.set_defaults(func=cmd_create)
    p = add_json_flag(kbs.add_parser("list", help="list documents"))
    p.add_argument("--kb", default=None)
    p.set_defaults(func=cmd_list)
    p = add_json_flag(kbs.add_parser("delete", help="delete documents by id (their path)"))
    p.add_argument("ids", nargs="+")
    p.add_argument("--kb", default=None)
    p.set_defaults(func=cmd_delete)
    p = add_json_flag(kbs.add_parser("search", help="retrieve chunks (no LLM)"))
    p.add_argument("query")
    p.add_argument("--kb", default=None)
    p.add_argument("-k", type=positive_int, default=5)
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    add_ray_flag(p, "a sharded KB: search with one actor per shard")
    p.set_defaults(func=cmd_search)


def _kb_path(args: argparse.Namespace, config) -> Path:
    return Path(args.kb).expanduser() if args.kb else config.kb_path()


def cmd_ingest(args: argparse.Namespace) -> int:
    from indexes.ingest import ingest_paths

    config = config_from_args(args)
    if args.embedder:
        config.embedder.model = args.embedder
    if args.chunk_tokens is not None:
        config.kb.chunk_tokens = args.chunk_tokens
    if args.overlap is not None:
        config.kb.chunk_overlap = args.overlap
    from indexes.distributed.shards import ShardedTextIndex, is_sharded

    show = False if (args.no_progress or args.json) else None
    kb: Any = _kb_path(args, config)
    sharded = is_sharded(kb)
    if args.ray is not None:
        if sharded:
            raise InputError("--ray ingests into one knowledge base, not a sharded one: ingest without --ray")
        from indexes.distributed.ingest import ingest_on_ray

        report = ingest_on_ray(
            kb,
            args.paths,
            address=args.ray,
            config=config,
            sync=args.sync,
            tags=args.tag,
            actors=args.actors,
            show_progress=show,
        )
    else:
        if sharded:  # documents routed to their shards
            kb = ShardedTextIndex.open(kb, embedder_backend=config.embedder.backend)
        try:
            report = ingest_paths(kb, args.paths, config=config, sync=args.sync, tags=args.tag, show_progress=show)
        finally:
            if sharded:
                kb.close()
    lines = [report.summary()]
    lines += [f"  skipped {f.path}: {f.reason}" for f in report.files if f.status == "skipped"]
    emit(args, {"ok": report.ok, "summary": report.summary(), **_report_dict(report)}, "\n".join(lines))
    return 0 if report.ok else 1


def _report_dict(report) -> dict:
    from tools.base import to_plain

    d = to_plain(report)
    d["counts"] = {s: report.count(s) for s in ("added", "updated", "unchanged", "deleted", "skipped")}
    d["chunks"] = report.chunks
    return d


def _open(args: argparse.Namespace, read_only: bool = True):
    from indexes.distributed.shards import ShardedTextIndex, is_sharded
    from indexes.store import IndexParams
    from indexes.text import TextIndex

    config = config_from_args(args)
    if is_sharded(_kb_path(args, config)):
        ray = getattr(args, "ray", None)
        return ShardedTextIndex.open(
            _kb_path(args, config), read_only=read_only, embedder_backend=config.embedder.backend, ray=ray
        )
    return TextIndex.open(
        _kb_path(args, config),
        read_only=read_only,
        embedder_backend=config.embedder.backend,
        params=IndexParams.from_config(config.kb),
    )


def cmd_create(args: argparse.Namespace) -> int:
    from indexes.distributed.shards import ShardedTextIndex
    from indexes.text import TextIndex

    config = config_from_args(args)
    path, embedder = _kb_path(args, config), args.embedder or config.embedder.model
    if args.shards:
        with ShardedTextIndex.open(path, embedder, shards=args.shards, embedder_backend=config.embedder.backend) as kb:
            info = {"shards": kb.shards, "embedder": kb.embedder.name, "documents": kb.count()}
    else:
        with TextIndex.open(path, embedder, embedder_backend=config.embedder.backend) as kb:
            info = {"shards": 0, "embedder": kb.embedder.name, "documents": kb.count()}
    shards = f"{info['shards']} shards" if info["shards"] else "unsharded"
    emit(
        args,
        {"ok": True, "kb": str(path), **info},
        f"{path}: {shards}, embedder {info['embedder']}, {info['documents']} documents",
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as kb:
        docs = kb.list_documents()
        text = "\n".join(f"{d.chunks:5d} chunks  {d.chars:8d} chars  {d.source}" for d in docs) or "(empty)"
        emit(args, {"ok": True, "embedder": kb.embedder.name, "documents": docs}, text)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    ids = [str(Path(i).expanduser().resolve()) if Path(i).expanduser().exists() or "/" in i else i for i in args.ids]
    with _open(args, read_only=False) as kb:
        n = kb.delete(ids)
    emit(args, {"ok": True, "deleted": n}, f"deleted {n} document(s)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _open(args) as kb:
        hits = kb.search(args.query, k=args.k, mode=args.mode)
    text = "\n".join(f"{h.score:.4f}  {h.source}[{h.start}:{h.end}]  {h.text[:100]!r}" for h in hits) or "(no hits)"
    emit(args, {"ok": True, "hits": hits}, text)
    return 0
