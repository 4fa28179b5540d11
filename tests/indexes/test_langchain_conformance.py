"""LangChain's own standard tests against our VectorStore, retriever and embedders."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests
from langchain_tests.integration_tests.embeddings import EmbeddingsIntegrationTests
from langchain_tests.unit_tests.embeddings import EmbeddingsUnitTests

from indexes.langchain import EmbedderEmbeddings, TextIndexRetriever, TextIndexVectorStore


class TestTextIndexVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self):
        store = TextIndexVectorStore(embedding=self.get_embeddings(), path=None)
        try:
            yield store
        finally:
            store.close()


class TestPersistentVectorStore(VectorStoreIntegrationTests):
    """The same suite on an explicit folder, in hybrid (dense + BM25) mode."""

    @pytest.fixture()
    def vectorstore(self, tmp_path):
        store = TextIndexVectorStore(embedding=self.get_embeddings(), path=tmp_path / "lc", search_mode="hybrid")
        try:
            yield store
        finally:
            store.close()


class TestRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _store(self):
        self.store = TextIndexVectorStore(embedding=DeterministicFakeEmbedding(size=16))
        self.store.add_texts([f"document number {i} about edge ai" for i in range(12)])
        yield
        self.store.close()

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return TextIndexRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"vectorstore": self.store}

    @property
    def retriever_query_example(self) -> str:
        return "edge ai"


def _embedding_suite(base: type, model: str, name: str) -> type:
    """LangChain's embeddings suite `base` over our embedder `model`."""

    class Suite(base):
        @property
        def embeddings_class(self):
            return EmbedderEmbeddings

        @property
        def embedding_model_params(self) -> dict:
            return {"model": model}

    Suite.__name__ = Suite.__qualname__ = name
    return Suite


TestHashEmbeddingsUnit = _embedding_suite(EmbeddingsUnitTests, "hash", "TestHashEmbeddingsUnit")
TestHashEmbeddingsIntegration = _embedding_suite(EmbeddingsIntegrationTests, "hash", "TestHashEmbeddingsIntegration")
TestMiniLMEmbeddingsIntegration = pytest.mark.slow(
    _embedding_suite(EmbeddingsIntegrationTests, "all-MiniLM-L6-v2", "TestMiniLMEmbeddingsIntegration")
)
TestUSEEmbeddingsIntegration = pytest.mark.slow(
    _embedding_suite(EmbeddingsIntegrationTests, "use-multilingual-v3", "TestUSEEmbeddingsIntegration")
)
