"""LangChain faces of the text index: a `VectorStore` over TextIndex, and our embedders as
LangChain `Embeddings`.

    store = TextIndexVectorStore(embedding=HuggingFaceEmbeddings(...), path="kb/")   # path=None: temporary
    store.add_documents(docs, ids=[...])      # same id replaces (upsert); deleting missing ids is a no-op
    retriever = store.as_retriever(search_kwargs={"k": 4})

Each LangChain Document is stored whole (no re-chunking), with its metadata as JSON.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore

from indexes.embedders import Embedder, approx_tokens, get_embedder
from indexes.text import Document, TextIndex
from polymodal.lazy import load_once

__all__ = ["TextIndexVectorStore", "TextIndexRetriever", "EmbedderEmbeddings", "LangChainEmbedder"]


class LangChainEmbedder:
    """Any LangChain `Embeddings` as a polymodal `Embedder` (vectors L2-normalised)."""

    def __init__(self, embeddings: Embeddings, name: str | None = None) -> None:
        self.embeddings = embeddings
        self.name = name or f"langchain:{type(embeddings).__name__}"

    @load_once
    def dim(self) -> int:
        return len(self.embeddings.embed_query("dimension probe"))

    @staticmethod
    def _norm(x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float32))
        n = np.linalg.norm(x, axis=1, keepdims=True)
        n[n == 0] = 1
        return np.ascontiguousarray(x / n)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._norm(self.embeddings.embed_documents(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        return self._norm(self.embeddings.embed_query(text))[0]

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


class EmbedderEmbeddings(Embeddings):
    """A polymodal embedder (by name, e.g. "all-MiniLM-L6-v2") as LangChain `Embeddings`."""

    def __init__(self, model: str | Embedder = "all-MiniLM-L6-v2") -> None:
        self.embedder = get_embedder(model) if isinstance(model, str) else model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


class TextIndexVectorStore(VectorStore):
    """A LangChain VectorStore persisted as a polymodal TextIndex (SQLite + FAISS, no pickle)."""

    def __init__(self, embedding: Embeddings, path: str | Path | None = None, *, search_mode: str = "dense") -> None:
        self._embedding = embedding
        self._tmp = None if path is not None else tempfile.mkdtemp(prefix="polymodal-lc-")
        folder = Path(path) if path is not None else Path(self._tmp) / "index"
        self.search_mode = search_mode
        self.index = TextIndex.open(folder, LangChainEmbedder(embedding), chunk_tokens=0)

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    def close(self) -> None:
        self.index.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- writing --------------------------------------------------------------------------------
    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None, **kwargs: Any
    ) -> list[str]:
        texts = list(texts)
        metadatas = metadatas or [{} for _ in texts]
        ids = [i or str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        docs = [
            Document(id=i, text=t, source=str(m.get("source", "")), metadata=dict(m))
            for i, t, m in zip(ids, texts, metadatas)
        ]
        self.index.upsert(docs)
        return ids

    def add_documents(self, documents: list[LCDocument], **kwargs: Any) -> list[str]:
        ids = kwargs.pop("ids", None) or [d.id for d in documents]
        return self.add_texts(
            [d.page_content for d in documents], [d.metadata for d in documents], ids=list(ids), **kwargs
        )

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            return False
        self.index.delete(list(ids))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[LCDocument]:
        return [self._lc(d) for d in self.index.get_by_ids(list(ids))]

    # -- searching ------------------------------------------------------------------------------
    @staticmethod
    def _lc(d: Document) -> LCDocument:
        return LCDocument(id=d.id, page_content=d.text, metadata=d.metadata)

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[LCDocument, float]]:
        hits = self.index.search(
            query, k=k, mode=kwargs.pop("mode", self.search_mode), filter=kwargs.pop("filter", None)
        )
        docs = {d.id: d for d in self.index.get_by_ids([h.doc_id for h in hits])}
        return [(self._lc(docs[h.doc_id]), h.score) for h in hits if h.doc_id in docs]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[LCDocument]:
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def _select_relevance_score_fn(self):
        return lambda score: (score + 1.0) / 2.0  # cosine in [-1, 1] -> [0, 1]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | Path | None = None,
        **kwargs: Any,
    ) -> "TextIndexVectorStore":
        store = cls(embedding=embedding, path=path, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class TextIndexRetriever(BaseRetriever):
    """A retriever over a TextIndexVectorStore with hybrid search; `k`, `mode` and `filter` can be
    set at construction and overridden per call (`retriever.invoke(q, k=2)`)."""

    vectorstore: Any
    k: int = 4
    mode: str = "hybrid"
    filter: dict | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: Any, **kwargs: Any) -> list[LCDocument]:
        return self.vectorstore.similarity_search(
            query,
            k=kwargs.get("k", self.k),
            mode=kwargs.get("mode", self.mode),
            filter=kwargs.get("filter", self.filter),
        )
