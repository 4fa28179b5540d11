"""Extractive decoding: a token-level constraint under which the model can only copy a span of the
given sources verbatim (then optionally cite, like "[2]"), or write an anchored reply (NOT_FOUND).

Works on bytes, so byte-level BPE tokens that split a UTF-8 character are handled. The model still
chooses the span: at each step the allowed tokens are the ones that continue some occurrence of
what has been copied so far, and greedy decoding takes the best of them. A greedy answer that was
already a verbatim copy comes out unchanged; a paraphrase becomes the nearest copy the model scores
highest.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["CopyConstraint", "TokenIndex", "llama_token_index"]

_TAIL_BYTES = frozenset(b" [],0123456789")
_MAX_TOKEN_BYTES = 32  # longer tokens are never needed to copy a span


class TokenIndex:
    """Every vocabulary token by its bytes (built once per model)."""

    def __init__(self, token_bytes: Sequence[bytes], eos_ids: Sequence[int]) -> None:
        self.by_bytes: dict[bytes, list[int]] = {}
        self.tail: list[int] = []  # tokens that may open or continue a citation: only " [],0-9"
        for i, b in enumerate(token_bytes):
            if not b or len(b) > _MAX_TOKEN_BYTES:
                continue
            self.by_bytes.setdefault(b, []).append(i)
            if all(c in _TAIL_BYTES for c in b):
                self.tail.append(i)
        self.cite_open = [t for t in self.tail if b"[" in token_bytes[t]]
        self.token_bytes = token_bytes
        self.eos_ids = list(eos_ids)


class CopyConstraint:
    """State of one extractive generation.

    sources: texts whose spans may be copied, from any character. anchored: replies that must be
    copied from their first character (the NOT_FOUND sentinel). After a non-empty copy the model
    may stop (an EOS token) or open a citation with "[": from then on only citation tokens (" [],"
    and digits) are allowed, and the reply ends at the first "]".
    """

    def __init__(self, index: TokenIndex, sources: Sequence[str], anchored: Sequence[str] = ()) -> None:
        self.index = index
        self.texts = [s.encode("utf-8") for s in sources] + [a.encode("utf-8") for a in anchored]
        ends: set[tuple[int, int]] = set()
        for n, text in enumerate(self.texts[: len(sources)]):
            ends.update((n, p) for p in range(len(text)) if (text[p] & 0xC0) != 0x80)  # character starts
        ends.update((n, 0) for n in range(len(sources), len(self.texts)) if self.texts[n])
        self.ends = ends  # (source, byte offset) where an occurrence of the copy so far ends
        self.copied = b""
        self.in_tail = False
        self.done = False

    def allowed(self) -> list[int]:
        """Token ids allowed next (EOS and citation openings included once stopping is allowed);
        empty once done."""
        if self.done:
            return []
        if self.in_tail:
            return sorted(self.index.tail + self.index.eos_ids)
        ids: set[int] = set()
        lookup = self.index.by_bytes
        for n, p in self.ends:
            text = self.texts[n]
            for end in range(p + 1, min(len(text), p + _MAX_TOKEN_BYTES) + 1):
                hit = lookup.get(text[p:end])
                if hit:
                    ids.update(hit)
        if self.copied.strip() and _complete_utf8(self.copied):
            ids.update(self.index.eos_ids + self.index.cite_open)
        return sorted(ids)

    def choose(self, logits: Any) -> int | None:
        """The allowed token with the highest logit, accepted; None once the reply is complete."""
        ids = self.allowed()
        if not ids:
            return None
        token = ids[int(np.asarray(logits)[ids].argmax())]
        self.accept(token)
        return token

    def accept(self, token: int) -> None:
        if token in self.index.eos_ids:
            self.done = True
            return
        b = self.index.token_bytes[token]
        if self.in_tail:
            self.done = b"]" in b
            return
        ends = {(n, p + len(b)) for n, p in self.ends if self.texts[n].startswith(b, p)}
        if ends:
            self.ends, self.copied = ends, self.copied + b
        elif b"[" in b:  # a citation opens: the copy is over
            self.in_tail = True
            self.done = b"]" in b.split(b"[", 1)[1]
        else:
            raise ValueError(f"token {token} ({b!r}) is not allowed by the copy constraint")


def _complete_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def llama_token_index(llm: Any) -> TokenIndex:
    """The `TokenIndex` of a `llama_cpp.Llama`'s vocabulary."""
    import ctypes

    import llama_cpp

    vocab, n_vocab = llm._model.vocab, llm.n_vocab()
    buf = ctypes.create_string_buffer(256)
    pieces = []  # llama_token_to_piece straight: Llama.detokenize per token is 15x slower
    for i in range(n_vocab):
        size = llama_cpp.llama_token_to_piece(vocab, i, buf, len(buf), 0, False)
        pieces.append(buf.raw[:size] if size > 0 else b"")
    eos = [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    return TokenIndex(pieces, eos)
