"""ONNX Runtime backend for mean-pooling sentence-transformers models (e.g. all-MiniLM-L6-v2).

The transformer is exported once with torch.onnx into the cache, keyed by the checksum of the
weights, and optionally quantized to int8 (dynamic, per channel). fp32 gives the same vectors as
torch (cosine 1.0 to 1e-6), so it shares the model's name; int8 is a different embedder
("<name>@int8", cosine >= 0.97 to fp32). No optimum package needed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from polymodal.errors import ModelUnavailable, require

__all__ = ["OnnxSentenceEncoder", "export_onnx"]


def _weights(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).exists():
            return folder / name
    raise ModelUnavailable(f"no model weights in {folder}")


def _checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _check_mean_pooling(folder: Path) -> None:
    pool = folder / "1_Pooling" / "config.json"
    if pool.exists():
        cfg = json.loads(pool.read_text())
        if not cfg.get("pooling_mode_mean_tokens", False):
            raise ModelUnavailable(
                "the onnx backend supports mean-pooling models only; use [embedder] "
                f'backend = "torch" for {folder.name}'
            )


def export_onnx(folder: Path, cache: Path, quantized: bool = False) -> Path:
    """Path of the exported (and maybe quantized) ONNX file for the model in `folder`; builds it once."""
    folder = Path(folder)
    _check_mean_pooling(folder)
    target_dir = Path(cache) / "onnx" / f"{folder.name}-{_checksum(_weights(folder))}"
    fp32 = target_dir / "model.onnx"
    int8 = target_dir / "model-int8.onnx"
    target = int8 if quantized else fp32
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one exporter at a time across processes
        if not fp32.exists():
            _export_fp32(folder, fp32)
        if quantized and not int8.exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
                out = Path(tmp) / "q.onnx"
                quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
                os.replace(out, int8)
    return target


def _export_fp32(folder: Path, target: Path) -> None:
    import warnings

    torch = require("torch", "models", "exporting the embedder to ONNX")
    transformers = require("transformers", "models", "exporting the embedder to ONNX")
    model = transformers.AutoModel.from_pretrained(str(folder)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tok.model_input_names]

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *args):
            return self.m(**dict(zip(names, args))).last_hidden_state

    enc = tok(["an example", "a slightly longer example sentence"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(tmp) / "model.onnx"
        torch.onnx.export(
            Wrapper(model),
            tuple(enc[n] for n in names),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
        os.replace(out, target)


class OnnxSentenceEncoder:
    """The subset of the SentenceTransformer API our embedder uses, on ONNX Runtime."""

    def __init__(self, folder: Path, cache: Path, quantized: bool = False, threads: int = 0) -> None:
        ort = require("onnxruntime", "models", "the onnx embedder backend")
        transformers = require("transformers", "models", "the embedder tokenizer")
        self.folder = Path(folder)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        self._names = [
            n for n in ("input_ids", "attention_mask", "token_type_ids") if n in self.tokenizer.model_input_names
        ]
        cfg = self.folder / "sentence_bert_config.json"
        self.max_seq_length = json.loads(cfg.read_text()).get("max_seq_length", 256) if cfg.exists() else 256
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or (os.cpu_count() or 1)
        # no busy-waiting between runs: spinning threads starve torch and other tools in the process
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = export_onnx(self.folder, cache, quantized)
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self._dim = int(json.loads((self.folder / "config.json").read_text())["hidden_size"])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, texts: list[str], batch_size: int = 32, **_: object) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts])  # similar lengths share a batch: less padding
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            hidden = self.session.run(None, {n: enc[n].astype(np.int64) for n in self._names})[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out
