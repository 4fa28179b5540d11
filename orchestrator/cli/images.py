"""`polymodal images index|search|tag|info|delete`: the photo library from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.cli._common import add_json_flag, add_ray_flag, config_from_args, emit, positive_int

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    images = sub.add_parser("images", help="index and search photos (text or example image)")
    acts = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)

    p = add_json_flag(acts.add_parser("index", help="index (or update) the photos under a folder"))
    p.add_argument("folder")
    _index_arg(p)
    p.add_argument(
        "--encoder",
        default=None,
        help="auto | conse | open_clip | fake | module:Class (default: the index's, else [images] encoder)",
    )
    p.add_argument("--no-prune", action="store_true", help="keep rows of files that were deleted from disk")
    p.add_argument("--ocr", action=argparse.BooleanOptionalAction, default=None, help="read text in photos (Tesseract)")
    p.add_argument("--faces", action=argparse.BooleanOptionalAction, default=None, help="count faces (BlazeFace)")
    p.add_argument("--no-progress", action="store_true")
    add_ray_flag(p, "decode and encode")
    p.add_argument("--actors", type=positive_int, default=2, help="with --ray: encoding actors")
    p.set_defaults(func=cmd_index)

    p = add_json_flag(acts.add_parser("search", help="find photos by text and/or an example image"))
    p.add_argument("query", nargs="?", default="", help="what the photo shows (any language)")
    p.add_argument("--image", default="", help="an example image: find photos like it")
    _index_arg(p)
    p.add_argument("-k", type=positive_int, default=5)
    p.add_argument("--folder", default="", help="only photos under this folder")
    p.add_argument("--tag", default="", help="only photos with this tag")
    p.add_argument("--from", dest="date_from", default="", metavar="YYYY-MM-DD", help="only photos taken on/after")
    p.add_argument("--to", dest="date_to", default="", metavar="YYYY-MM-DD", help="only photos taken on/before")
    p.add_argument(
        "--faces", dest="has_faces", action=argparse.BooleanOptionalAction, default=None, help="only photos with faces"
    )
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid", help="dense: the embedding alone")
    p.set_defaults(func=cmd_search)

    p = add_json_flag(acts.add_parser("tag", help="zero-shot: rank labels for one image"))
    p.add_argument("image")
    p.add_argument("--labels", required=True, help="comma-separated labels, e.g. cat,dog,car")
    _index_arg(p)
    p.add_argument("--encoder", default=None, help="default: the index's encoder if it exists, else [images] encoder")
    p.set_defaults(func=cmd_tag)

    p = add_json_flag(acts.add_parser("info", help="which encoder is active; what an index holds"))
    _index_arg(p)
    p.set_defaults(func=cmd_info)

    p = add_json_flag(acts.add_parser("delete", help="remove files or folders from the index"))
    p.add_argument("paths", nargs="+")
    _index_arg(p)
    p.set_defaults(func=cmd_delete)


def _index_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", default=None, help="index folder (default: [images] index_path, ~/.polymodal/images)")


def _index_path(args: argparse.Namespace, config) -> Path:
    return Path(args.index).expanduser() if args.index else config.images_path()


def _open(args: argparse.Namespace, read_only: bool = True, encoder: str | None = None, create: bool = False, **kw):
    from indexes.images import ImageIndex

    config = config_from_args(args)
    path = _index_path(args, config)
    return ImageIndex.open(path, encoder, config=config.images, read_only=read_only, create=create, **kw)


def cmd_index(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    path = _index_path(args, config)
    encoder = args.encoder
    if encoder is None and not (path / "manifest.json").exists():
        encoder = config.images.encoder
    with _open(args, read_only=False, encoder=encoder, create=True, ocr=args.ocr, faces=args.faces) as idx:
        runner = None
        if args.ray is not None:
            from indexes.distributed.images import RayImageRunner

            runner = RayImageRunner(args.ray, actors=args.actors)
        report = idx.index_folder(
            args.folder, prune=not args.no_prune, show_progress=not (args.no_progress or args.json), runner=runner
        )
        total = idx.count()
        signals = idx.signal_info()
    lines = [report.summary(), f"index {path}: {total} image(s); {_signal_line(signals)}"]
    lines += [f"  skipped {s.reason}" for s in report.skipped]
    emit(
        args,
        {
            "ok": True,
            "index": str(path),
            "images": total,
            "summary": report.summary(),
            "signals": signals,
            **_plain(report),
        },
        "\n".join(lines),
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from polymodal.errors import InputError
    from tools.image_search import ImageSearchTool

    config = config_from_args(args)
    tool = ImageSearchTool(index_path=_index_path(args, config), config=config)
    if not args.query and not args.image:
        raise InputError("give a text query or --image PATH")
    try:
        if args.mode == "hybrid":
            result = tool(
                {
                    "query": args.query,
                    "image": args.image,
                    "k": args.k,
                    "folder": args.folder,
                    "tag": args.tag,
                    "date_from": args.date_from,
                    "date_to": args.date_to,
                    "has_faces": args.has_faces,
                }
            )
        else:
            filters = {"date_from": args.date_from, "date_to": args.date_to, "has_faces": args.has_faces}
            result = tool.search(
                args.query, args.image or None, args.k, args.folder, args.tag, filters=filters, mode=args.mode
            )
    finally:
        tool.close()
    rows = [f"{h.score:.4f}  {h.path}  {_about(h)}[thumb {h.thumbnail}]" for h in result.hits]
    head = f"encoder: {result.encoder}" + (f"; understood {result.understood}" if result.understood else "")
    text = "\n".join([head, *rows]) if rows else f"(no hits; encoder {result.encoder})"
    emit(
        args,
        {
            "ok": True,
            "encoder": result.encoder,
            "index": result.index,
            "mode": args.mode,
            "filters": result.filters,
            "understood": result.understood,
            "hits": [
                {
                    "path": h.path,
                    "score": h.score,
                    "thumbnail": h.thumbnail,
                    "encoder": h.encoder,
                    "space": h.space,
                    "tags": h.tags,
                    "dense_score": h.dense_score,
                    "bm25_score": h.bm25_score,
                    "faces": h.faces,
                    "taken_at": h.taken_at,
                    "place": h.place,
                    "camera": h.camera,
                    "text": h.text,
                }
                for h in result.hits
            ],
        },
        text,
    )
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from indexes.image_encoders import get_image_encoder
    from indexes.image_encoders.loading import load_image
    from polymodal.errors import InputError

    labels = [l.strip() for l in args.labels.split(",") if l.strip()]
    if not labels:
        raise InputError("--labels needs at least one label")
    config = config_from_args(args)
    path = _index_path(args, config)
    image = load_image(Path(args.image).expanduser()).image
    if args.encoder is None and (path / "manifest.json").exists():
        with _open(args) as idx:
            name, tags = idx.encoder.name, idx.tag(image, labels)
    else:
        enc = get_image_encoder(args.encoder or config.images.encoder, config.images)
        name, tags = enc.name, enc.tag(image, labels)
    text = "\n".join([f"encoder: {name}", *(f"{t.probability:6.1%}  {t.score:+.3f}  {t.label}" for t in tags)])
    emit(args, {"ok": True, "image": args.image, "encoder": name, "tags": tags}, text)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from indexes.image_encoders import describe

    config = config_from_args(args)
    path = _index_path(args, config)
    data: dict = {"ok": True, "configured_encoder": describe(config.images), "index": None}
    lines = [f"configured encoder: {data['configured_encoder']['name']} ({data['configured_encoder']['reason']})"]
    if (path / "manifest.json").exists():
        with _open(args) as idx:
            data["index"] = idx.info()
        lines.append(f"index {path}: {data['index']['images']} image(s), encoder {data['index']['encoder']}")
        lines.append(_signal_line(data["index"]["signals"]))
    else:
        lines.append(f"no index at {path}")
    emit(args, data, "\n".join(lines))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _open(args, read_only=False) as idx:
        n = idx.delete(args.paths)
    emit(args, {"ok": True, "deleted": n}, f"removed {n} image(s) from the index")
    return 0


def _about(hit) -> str:
    bits = [hit.taken_at[:10], hit.place, hit.camera, f"{hit.faces} face(s)" if hit.faces else ""]
    return "".join(f"{b}  " for b in bits if b)


def _signal_line(s: dict) -> str:
    if not s.get("tables"):
        return "photo signals: none yet (an index from an older version: run 'polymodal images index FOLDER')"
    ocr = "on" if s["ocr"] else "off"
    if s["ocr"] and not s["ocr_available"]:
        ocr = f"on but unavailable: {s['ocr_reason']}"
    line = (
        f"photo signals: {s['with_faces']} with faces, {s['with_date']} dated, {s['with_place']} with a place, "
        f"{s['with_text']} with text (OCR {ocr})"
    )
    return line + (f"; {s['note']}" if s.get("note") else "")


def _plain(report) -> dict:
    from tools.base import to_plain

    return to_plain(report)
