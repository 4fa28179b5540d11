"""Any LangChain BaseLoader, or a function returning documents, feeds ingestion with its offsets
and per-part metadata kept."""

from typing import Iterator

import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document as LCDocument

from indexes.loaders import documents_from_loader, ingest_loader
from indexes.text import Document, TextIndex
from polymodal.config import Config
from polymodal.errors import InputError


class PagedLoader(BaseLoader):
    """Like PyPDFLoader: one LangChain document per page, same source."""

    def lazy_load(self) -> Iterator[LCDocument]:
        for n, text in enumerate(["Intro page about sensors.", "The relay trips at 40 amps.", "Appendix."], 1):
            yield LCDocument(page_content=text, metadata={"source": "/docs/relay.pdf", "page": n, "author": "Kim"})
        yield LCDocument(page_content="A short note on irrigation.", metadata={"source": "/docs/note.txt"})


def _config():
    c = Config()
    c.embedder.model = "hash"
    return c


def test_parts_of_one_source_become_one_document_with_located_chunks(tmp_path):
    docs = documents_from_loader(PagedLoader())
    relay = next(d for d in docs if d.id == "/docs/relay.pdf")
    assert relay.metadata == {"author": "Kim"} and relay.type == "pdf"
    assert [m.meta for m in relay.marks] == [{"page": 1}, {"page": 2}, {"page": 3}]
    report = ingest_loader(tmp_path / "kb", PagedLoader(), config=_config(), show_progress=False)
    assert report.count("added") == 2
    with TextIndex.open(tmp_path / "kb") as kb:
        hit = kb.search("relay trips amps", k=1, mode="bm25")[0]
        assert hit.location == {"page": 2} and hit.metadata["author"] == "Kim"
        assert kb.get_by_ids([hit.doc_id])[0].text[hit.start : hit.end] == "The relay trips at 40 amps."
    again = ingest_loader(tmp_path / "kb", PagedLoader(), config=_config(), show_progress=False)
    assert again.count("unchanged") == 2


def test_a_function_returning_documents_is_a_loader_and_failures_are_one_line(tmp_path):
    report = ingest_loader(
        tmp_path / "kb", lambda: [Document("x", "Pumps run at night.", source="db://x")], config=_config()
    )
    assert report.count("added") == 1

    def broken():
        raise OSError("database is locked")

    with pytest.raises(InputError, match="loader broken failed: OSError: database is locked"):
        documents_from_loader(broken)
    with pytest.raises(InputError, match="not a Document"):
        documents_from_loader(lambda: ["plain string"])
