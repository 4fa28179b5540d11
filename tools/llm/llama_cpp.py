"""The offline default backend: a GGUF model through llama-cpp-python, loaded on first use.

Beyond `ChatModel` it offers what RAG reads from logits (`first_token_probability`,
`yes_probability`), extractive decoding (`stream_copy`, tools.llm.copy_constraint), `warm` and
`count_tokens`; the KV state of fixed prompt prefixes is kept between prompts (tools.llm.kv_states).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from polymodal.cancel import check_cancelled
from polymodal.errors import ModelUnavailable, require
from polymodal.lazy import Holds, load_once
from tools.llm.base import GenerationStats, Message, StatsRecorder
from tools.llm.kv_states import (
    MIN_PREFIX_TOKENS,
    PrefixStates,
    common_prefix,
    held_tokens,
    prefix_marks,
    restore_state,
    save_state,
)

__all__ = ["LlamaCppChatModel"]


class LlamaCppChatModel(StatsRecorder):
    """A GGUF model through llama-cpp-python; the chat template comes from the GGUF itself.

    Loads on first use (once, thread-safe). llama.cpp contexts are not safe for concurrent
    generation, so calls are serialised. The KV cache of the previous prompt is reused up to the
    longest common token prefix, so a fixed system prompt is only prefilled once; and since prompts
    of another kind (the planner's, RAG's) evict it, the KV state of each fixed prefix (the system
    message, and everything before the last message) is kept too, up to `prefix_cache_mb`, and
    restored when a prompt starts with it (`tools.llm.kv_states`). `warm(prefix_messages)` prefills and
    keeps one ahead of the first request. `unload()` closes the llama.cpp model and context (the model
    manager calls it on eviction); the next call loads them again.
    Greedy requests without stop strings decode in `_greedy` (argmax on the logits, the grammar
    checked on the argmax first); `fast_greedy=False` sends them through the library's sampler.
    """

    def __init__(
        self,
        model_path: str | Path | Callable[[], str | Path],
        *,
        n_ctx: int = 4096,
        n_threads: int = 0,
        n_batch: int = 512,
        name: str = "",
        seed: int = 0,
        fast_greedy: bool = True,
        prefix_cache_mb: int = 128,
    ) -> None:
        self._path_ref = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_batch = n_batch
        self.seed = seed
        self.fast_greedy = fast_greedy
        self.name = name or (Path(model_path).name if not callable(model_path) else "llama.cpp")
        self._gen_lock = threading.Lock()  # a plain Lock: a stream may be closed from another thread
        self._states = PrefixStates(prefix_cache_mb * 2**20)  # KV snapshots of fixed prompt prefixes
        self._rendered: dict[tuple, list[int]] = {}  # fixed prefixes, tokenized (under the generation lock)
        self._holds = Holds(self, "llm", self._close)  # every use of self.llm, so unload() never frees one in use

    @classmethod
    def from_config(cls, cfg: Any, cache_dir: Path | None = None) -> "LlamaCppChatModel":
        """The `[llm]` model (default: the offline GGUF, joined from its packages on first use)."""
        from polymodal.models import OFFLINE_LLM_NAME, resolve_llm_model

        name = cfg.model if cfg.model else OFFLINE_LLM_NAME
        return cls(
            lambda: resolve_llm_model(cfg.model, cache_dir),
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads,
            name=Path(name).name,
            prefix_cache_mb=getattr(cfg, "prefix_cache_mb", 128),
        )

    @property
    def model_path(self) -> str:
        ref = self._path_ref
        return str(ref() if callable(ref) else ref)

    @load_once
    def llm(self) -> Any:
        """The `llama_cpp.Llama`, loaded on first use."""
        return self._load()

    def _load(self) -> Any:
        llama_cpp = require("llama_cpp", "models", "the llama.cpp LLM backend")
        path = self.model_path
        if not Path(path).is_file():
            raise ModelUnavailable(f"LLM file not found: {path} (set [llm] model to a .gguf file)")
        from tools.llm.cpu_check import amx_verdict, no_amx_params

        # where ggml's AMX matmul failed its check (a child process, once per build), load without it
        params = contextlib.nullcontext() if amx_verdict(path).use_amx else no_amx_params()
        try:
            with params:
                return llama_cpp.Llama(
                    model_path=path,
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_batch=self.n_batch,
                    seed=self.seed,
                    verbose=False,
                )
        except ValueError as exc:
            raise ModelUnavailable(f"llama.cpp cannot load {Path(path).name}: {exc}") from exc

    def unload(self) -> bool:
        """Free the model, its context and the kept prefix states (now, or when the calls in flight
        end); the next call loads the model again. False when it was not loaded."""
        return self._holds.release()

    def _close(self, llm: Any) -> None:
        self._states = PrefixStates(self._states.budget_bytes)  # snapshots are the closed context's memory
        close = getattr(llm, "close", None)
        if close is not None:
            close()

    def _kwargs(
        self, max_tokens: int, temperature: float, json_schema: dict | None, stop: list[str] | None
    ) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "stop": stop or None}
        if temperature <= 0:
            kw["top_k"] = 1  # greedy: reproducible
        if json_schema is not None:
            kw["response_format"] = {"type": "json_object", "schema": json_schema}
        return kw

    def count_tokens(self, text: str) -> int:
        with self._holds.hold() as llm:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> str:
        return "".join(
            self.stream(messages, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema, stop=stop)
        )

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        with self._holds.hold() as llm:
            if temperature <= 0 and not stop and self.fast_greedy and hasattr(llm, "_ctx"):
                yield from self._greedy(llm, messages, json_schema, max_tokens)
                return
            kw = self._kwargs(max_tokens, temperature, json_schema, stop)
            with self._gen_lock:
                before = held_tokens(llm)
                t0 = time.perf_counter()
                t_first = None
                n = 0
                for chunk in llm.create_chat_completion(messages=list(messages), stream=True, **kw):
                    check_cancelled()  # the step's token (polymodal.cancel): stop between tokens
                    delta = chunk["choices"][0].get("delta", {}).get("content")
                    if not delta:
                        continue
                    if t_first is None:
                        t_first = time.perf_counter()
                    n += 1
                    yield delta
                t_end = time.perf_counter()
                t_first = t_first or t_end
                after = held_tokens(llm)
                prompt_tokens = max(0, len(after) - n)
                self.record_stats(
                    GenerationStats(
                        prompt_tokens=prompt_tokens,
                        completion_tokens=n,
                        prefill_s=t_first - t0,
                        decode_s=t_end - t_first,
                        cached_prompt_tokens=common_prefix(before, after[:prompt_tokens]),
                    )
                )

    def stream_copy(
        self,
        messages: list[Message],
        sources: list[str],
        *,
        anchored: tuple[str, ...] | list[str] = (),
        max_tokens: int = 64,
    ) -> Iterator[str]:
        """Greedy extractive decoding: the reply is a verbatim span of one of `sources` (then an
        optional citation like "[2]"), or one of `anchored` from its start (tools.llm.copy_constraint)."""
        from tools.llm.copy_constraint import CopyConstraint

        with self._holds.hold() as llm:
            if not hasattr(llm, "_ctx"):
                raise ModelUnavailable("extractive decoding needs llama-cpp-python's low-level context")
            constraint = CopyConstraint(self._token_index, sources, anchored)
            yield from self._greedy(llm, messages, None, max_tokens, constraint)

    @load_once
    def _token_index(self) -> Any:
        """Every vocabulary token by its bytes, built on the first extractive request (the
        caller holds the model)."""
        from tools.llm.copy_constraint import llama_token_index

        return llama_token_index(self.llm)

    def _greedy(
        self,
        llm: Any,
        messages: list[Message],
        json_schema: dict[str, Any] | None,
        max_tokens: int,
        constraint: Any = None,
    ) -> Iterator[str]:
        """Greedy decoding straight from the logits, under the schema's grammar when one is given.

        llama-cpp-python's sampler chain copies all 151k logits into a candidate array at every step
        and, with a grammar, runs the grammar over every candidate (~35 ms per token here, more than
        the forward pass). Under greedy decoding only the argmax matters: when the grammar accepts
        it, it is the grammar-constrained argmax too; only when it is rejected does the whole
        vocabulary go through the grammar. Same output as the library's greedy sampler, faster.
        """
        import codecs
        import ctypes

        import llama_cpp
        import numpy as np
        from llama_cpp._internals import LlamaTokenDataArray
        from llama_cpp.llama_grammar import LlamaGrammar

        grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False) if json_schema else None
        vocab = llm._model.vocab
        n_vocab = llm.n_vocab()
        tokens = _prompt_tokens(llm, messages)
        single = LlamaTokenDataArray(n_vocab=1)  # the argmax alone, checked against the grammar
        full = LlamaTokenDataArray(n_vocab=n_vocab) if grammar else None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._gen_lock:
            smpl = (
                llama_cpp.llama_sampler_init_grammar(
                    vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
                )
                if grammar
                else None
            )
            try:
                t0 = time.perf_counter()
                cached, restored = self._prefill(llm, messages, tokens)
                t_first, n = None, 0
                for _ in range(max_tokens):
                    check_cancelled()  # the step's token (polymodal.cancel): stop between tokens
                    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))
                    if constraint is not None:  # the best token the copy constraint allows
                        choice = constraint.choose(logits)
                        if choice is None:
                            break
                        tok = choice
                    else:
                        tok = int(logits.argmax())
                    if smpl is not None:
                        single.copy_logits(logits[tok : tok + 1])
                        single.candidates_data.id[0] = tok
                        llama_cpp.llama_sampler_apply(smpl, ctypes.byref(single.candidates))
                        if not np.isfinite(single.candidates_data.logit[0]):
                            # the grammar forbids the argmax: ask it over the whole vocabulary
                            full.copy_logits(logits)
                            llama_cpp.llama_sampler_apply(smpl, ctypes.byref(full.candidates))
                            tok = int(np.argmax(full.candidates_data.logit))
                    if llama_cpp.llama_vocab_is_eog(vocab, tok):
                        break
                    if smpl is not None:
                        llama_cpp.llama_sampler_accept(smpl, tok)
                    t_first = t_first or time.perf_counter()
                    n += 1
                    piece = decoder.decode(llm.detokenize([tok]))
                    if piece:
                        yield piece
                    if constraint is not None and constraint.done:  # the citation closed: no need to evaluate it
                        break
                    llm.eval([tok])
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
                t_end = time.perf_counter()
                t_first = t_first or t_end
                self.record_stats(
                    GenerationStats(
                        prompt_tokens=len(tokens),
                        completion_tokens=n,
                        prefill_s=t_first - t0,
                        decode_s=t_end - t_first,
                        cached_prompt_tokens=cached,
                        restored_prompt_tokens=restored,
                    )
                )
            finally:
                if smpl is not None:
                    llama_cpp.llama_sampler_free(smpl)

    @property
    def kept_prefix_bytes(self) -> int:
        """Bytes of KV snapshots kept for fixed prompt prefixes (at most `prefix_cache_mb`)."""
        return self._states.used_bytes

    def forget(self, prefix_cache_mb: int | None = None) -> None:
        """Drop the KV cache and every kept prefix snapshot (optionally with a new budget): the
        next prompt is prefilled in full, as in a fresh process (benchmarks' cold baselines)."""
        with self._gen_lock:
            budget = self._states.budget_bytes if prefix_cache_mb is None else prefix_cache_mb * 2**20
            self._states = PrefixStates(budget)
        if load_once.loaded(self, "llm"):
            with self._holds.hold() as llm, self._gen_lock:
                llm.reset()

    def warm(self, prefix: list[Message]) -> None:
        """Prefill the KV cache with the chat-template rendering of `prefix` (the fixed system
        prompt) and keep its snapshot, so a request starting with it only prefills what follows."""
        with self._holds.hold() as llm, self._gen_lock:
            tokens = self._prefix_tokens(llm, prefix)
            if not tokens:
                return
            llm.reset()
            llm.eval(tokens)
            if len(tokens) >= MIN_PREFIX_TOKENS:
                self._states.put(save_state(llm))

    def yes_probability(self, messages: list[Message], *, keep_cache: bool = False) -> float:
        """P("yes") vs P("no") for the next token after `messages` (the reranker reads logits).
        keep_cache: leave the KV cache as it was (a side question under another system prompt
        then does not evict the cached prefix of the main prompts)."""
        import numpy as np

        with self._holds.hold() as llm:
            yes_ids = {llm.tokenize(w.encode(), add_bos=False)[0] for w in ("yes", "Yes", "是")}
            no_ids = {llm.tokenize(w.encode(), add_bos=False)[0] for w in ("no", "No", "否")}
            logits = self._next_logits(llm, messages, keep_cache=keep_cache)
        ly = np.logaddexp.reduce([logits[i] for i in yes_ids])
        ln = np.logaddexp.reduce([logits[i] for i in no_ids])
        return float(1.0 / (1.0 + np.exp(ln - ly)))

    def first_token_probability(self, messages: list[Message], texts: list[str]) -> float:
        """P(the reply starts with one of `texts`), read from the first token's distribution.

        Costs the prompt's prefill, which the following `stream` of the same messages reuses from
        the KV cache. rag_answer reads P(NOT_FOUND) here: a calibrated "not in the evidence" signal
        that does not need the sentinel to win the argmax.
        """
        import numpy as np

        with self._holds.hold() as llm:
            ids = {llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)[0] for t in texts if t}
            logits = self._next_logits(llm, messages)
        logz = np.logaddexp.reduce(logits)
        return float(np.exp(np.logaddexp.reduce([logits[i] for i in ids]) - logz)) if ids else 0.0

    def _next_logits(self, llm: Any, messages: list[Message], keep_cache: bool = False) -> Any:
        """Logits of the token after `messages` rendered with the generation prompt (KV cache
        reused; with keep_cache, restored afterwards to what it held before)."""
        import numpy as np

        tokens = _prompt_tokens(llm, messages)
        with self._gen_lock:
            saved = save_state(llm) if keep_cache else None
            try:
                t0 = time.perf_counter()
                cached, restored = self._prefill(llm, messages, tokens)
                # the prefill is done here: a following stream of the same prompt finds it cached
                self.record_stats(
                    GenerationStats(
                        prompt_tokens=len(tokens),
                        completion_tokens=0,
                        prefill_s=time.perf_counter() - t0,
                        decode_s=0.0,
                        cached_prompt_tokens=cached,
                        restored_prompt_tokens=restored,
                    )
                )
                # without logits_all, llama.cpp keeps only the last position's logits
                return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
            finally:
                if saved is not None:
                    restore_state(llm, saved)

    def _prefill(self, llm: Any, messages: list[Message], tokens: list[int]) -> tuple[int, int]:
        """Evaluate `tokens` (at least the last one, so its logits are fresh), reusing the KV cache
        up to the longest common prefix, or a kept prefix state when that is longer. The fixed
        prefixes of `messages` not yet kept are snapshotted on the way. Returns (tokens not
        prefilled, of them restored). The caller holds the generation lock."""
        cached, restored = common_prefix(held_tokens(llm), tokens), 0
        snap = self._states.longest_prefix_of(tokens[:-1])
        if snap is not None and len(snap.tokens) > cached:
            cached = restored = restore_state(llm, snap)
        llm.n_tokens = min(cached, len(tokens) - 1)
        if self._states.budget_bytes:
            for mark in prefix_marks(messages, tokens, lambda msgs: self._prefix_tokens(llm, msgs)):
                if llm.n_tokens < mark:
                    llm.eval(tokens[llm.n_tokens : mark])
                    self._states.put(save_state(llm))
        llm.eval(tokens[llm.n_tokens :])
        return cached, restored

    def _prefix_tokens(self, llm: Any, messages: list[Message]) -> list[int]:
        """`messages` rendered (no generation prompt) and tokenized, remembered: the same fixed
        prefixes come back with every prompt (rendering one costs ~6 ms)."""
        key = tuple((m.get("role", ""), m.get("content", "")) for m in messages)
        found = self._rendered.get(key)
        if found is None:
            found = llm.tokenize(_render_prefix(llm, messages).encode("utf-8"), add_bos=False, special=True)
            if len(self._rendered) >= 64:
                self._rendered.clear()
            self._rendered[key] = found
        return found


def _prompt_tokens(llm: Any, messages: list[Message]) -> list[int]:
    """`messages` rendered with the GGUF's chat template and the generation prompt, tokenized."""
    return llm.tokenize(
        _render_prefix(llm, messages, add_generation_prompt=True).encode("utf-8"), add_bos=False, special=True
    )


def _render_prefix(llm: Any, messages: list[Message], add_generation_prompt: bool = False) -> str:
    """Render `messages` with the GGUF's own chat template (jinja, from the model metadata)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return ""
    eos = llm.detokenize([llm.token_eos()]).decode("utf-8", "ignore")
    bos = llm.detokenize([llm.token_bos()]).decode("utf-8", "ignore") if llm.token_bos() >= 0 else ""
    fmt = Jinja2ChatFormatter(
        template=template, eos_token=eos, bos_token=bos, add_generation_prompt=add_generation_prompt
    )
    prompt = fmt(messages=list(messages)).prompt
    return prompt
