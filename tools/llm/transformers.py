"""A causal LM through transformers: a hub id, a local folder, or a .gguf file (dequantized).
torch and transformers are imported on first use."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from polymodal.errors import ModelUnavailable, require
from polymodal.lazy import load_once
from tools.llm.base import GenerationStats, Message, StatsRecorder

__all__ = ["TransformersChatModel", "extract_json"]


class TransformersChatModel(StatsRecorder):
    """`model`: a hub id, a local folder or a .gguf file (or a function returning one, asked at load).

    JSON-schema output is best effort here (the schema goes into the prompt and the first JSON
    object is extracted): transformers has no grammar-constrained decoding built in.
    """

    def __init__(
        self,
        model: str | Path | Callable[[], str | Path],
        *,
        name: str = "",
        dtype: str = "bfloat16",
        device: str = "cpu",
    ) -> None:
        self._ref = model
        self.dtype = dtype
        self.device = device
        self.name = name or (Path(str(model)).name if not callable(model) else "transformers")
        self._gen_lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, cache_dir: Path | None = None) -> "TransformersChatModel":
        """The `[llm]` model; the offline GGUF (the default) is dequantized: a slow fallback."""
        from polymodal.models import OFFLINE_LLM_NAME, resolve_llm_model

        model = cfg.model
        if model in ("", OFFLINE_LLM_NAME):
            return cls(lambda: resolve_llm_model(model, cache_dir), name=OFFLINE_LLM_NAME)
        return cls(model)

    def _source(self) -> tuple[str, dict[str, Any]]:
        ref = str(self._ref() if callable(self._ref) else self._ref)
        p = Path(ref).expanduser()
        if p.is_file() and p.suffix == ".gguf":
            return str(p.parent), {"gguf_file": p.name, "local_files_only": True}
        if p.exists():
            return str(p), {"local_files_only": True}
        if ref.startswith(("/", ".", "~")) or ref.count("/") != 1:
            raise ModelUnavailable(f"LLM folder not found: {ref} (set [llm] model to a local folder or a hub id)")
        return ref, {}  # a hub id: loaded only where a hub is reachable

    @load_once
    def loaded(self) -> tuple[Any, Any]:
        """(tokenizer, model), loaded on first use."""
        return self._load()

    def unload(self) -> bool:
        """Drop the weights (the model manager calls it on eviction; a call in flight keeps its own
        reference until it ends); the next call loads them again. False when nothing was loaded."""
        if load_once.take(self, "loaded") is None:
            return False
        import gc

        gc.collect()
        return True

    def _load(self) -> tuple[Any, Any]:
        transformers = require("transformers", "models", "the transformers LLM backend")
        torch = require("torch", "models", "the transformers LLM backend")
        src, kw = self._source()
        try:
            tok = transformers.AutoTokenizer.from_pretrained(src, **kw)
            model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, self.dtype), **kw)
        except OSError as exc:
            raise ModelUnavailable(f"cannot load LLM '{src}' with transformers: {str(exc).splitlines()[0]}") from exc
        model.to(self.device).eval()
        return tok, model

    def _inputs(self, messages: list[Message], json_schema: dict | None) -> Any:
        tok, model = self.loaded
        msgs = [dict(m) for m in messages]
        if json_schema is not None:
            hint = "Reply with one JSON object only, matching this JSON schema: " + json.dumps(json_schema)
            msgs = (
                [{"role": "system", "content": hint}] + msgs
                if msgs[0]["role"] != "system"
                else [{"role": "system", "content": msgs[0]["content"] + "\n" + hint}] + msgs[1:]
            )
        return tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True).to(
            model.device
        )

    def _gen_kwargs(self, max_tokens: int, temperature: float) -> dict[str, Any]:
        tok, _ = self.loaded
        kw: dict[str, Any] = {"max_new_tokens": max_tokens, "pad_token_id": tok.pad_token_id or tok.eos_token_id}
        if temperature > 0:
            kw.update(do_sample=True, temperature=temperature)
        else:
            kw.update(do_sample=False)
        return kw

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> str:
        text = "".join(
            self.stream(messages, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema, stop=stop)
        )
        return extract_json(text) if json_schema is not None else text

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        transformers = require("transformers", "models")
        tok, model = self.loaded
        inputs = self._inputs(messages, json_schema)
        streamer = transformers.TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        kwargs = {**inputs, **self._gen_kwargs(max_tokens, temperature), "streamer": streamer}
        with self._gen_lock:
            t0 = time.perf_counter()
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    model.generate(**kwargs)
                except BaseException as exc:  # surfaced in the caller's thread below
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            t_first, n, emitted, drained = None, 0, "", False
            try:
                for piece in streamer:
                    if not piece:
                        continue
                    t_first = t_first or time.perf_counter()
                    n += 1
                    cut = _stop_at(emitted + piece, stop)
                    if cut is not None:
                        if cut > len(emitted):
                            yield (emitted + piece)[len(emitted) : cut]
                        break
                    emitted += piece
                    yield piece
                else:
                    drained = True
            finally:
                if not drained:  # stopped early: let generate() finish before the lock is released
                    for _ in streamer:
                        pass
                worker.join()
            if failure:
                raise failure[0]
            t_end = time.perf_counter()
            t_first = t_first or t_end
            self.record_stats(
                GenerationStats(
                    prompt_tokens=int(inputs["input_ids"].shape[1]),
                    completion_tokens=n,
                    prefill_s=t_first - t0,
                    decode_s=t_end - t_first,
                )
            )


def _stop_at(text: str, stop: list[str] | None) -> int | None:
    if not stop:
        return None
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else None


def extract_json(text: str) -> str:
    """The first complete JSON object in `text` (models without constrained decoding wrap it)."""
    start = text.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                esc = (c == "\\") and not esc
                if c == '"' and not esc:
                    in_str = False
                continue
            if c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    candidate = text[start : i + 1]
                    try:
                        json.loads(candidate)
                        return candidate
                    except ValueError:
                        break
        start = text.find("{", start + 1)
    return text
