"""Documents from elsewhere: any LangChain `BaseLoader`, or a function returning documents,
feeds ingestion (`ingest_loader`) with its offsets and metadata kept.

LangChain loaders often return one document per part of a file (PyPDFLoader: a page each). Parts
with the same `source` are joined into one stored document, in order, each part marked with its
own metadata (so a chunk knows its part's page) and made a section no chunk spans; what all parts
share becomes the document's metadata. A polymodal `Document` passes through as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Union

from indexes.readers.base import Builder
from indexes.text import Document
from polymodal.errors import InputError

__all__ = ["documents_from_loader", "ingest_loader", "LoaderLike"]

LoaderLike = Union[Any, Callable[[], Iterable[Any]]]  # a langchain_core BaseLoader, or a function


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _load(loader: LoaderLike) -> list[Any]:
    from langchain_core.document_loaders import BaseLoader

    name = type(loader).__name__ if isinstance(loader, BaseLoader) else getattr(loader, "__name__", "loader")
    try:
        items = loader.lazy_load() if isinstance(loader, BaseLoader) else loader()
        return list(items)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise InputError(f"loader {name} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def documents_from_loader(loader: LoaderLike, *, doc_type: str = "") -> list[Document]:
    """polymodal Documents from a LangChain loader or a function returning LangChain or
    polymodal documents (see the module doc)."""
    from langchain_core.documents import Document as LCDocument

    ours: list[Document] = []
    groups: dict[str, list[LCDocument]] = {}
    for item in _load(loader):
        if isinstance(item, Document):
            ours.append(item)
        elif isinstance(item, LCDocument):
            source = str(item.metadata.get("source") or item.id or f"loaded-{len(groups)}")
            groups.setdefault(source, []).append(item)
        else:
            raise InputError(f"a loader returned {type(item).__name__}, not a Document")
    for source, parts in groups.items():
        metas = [{k: v for k, v in p.metadata.items() if _scalar(v) and k != "source"} for p in parts]
        shared = {k: v for k, v in metas[0].items() if all(m.get(k) == v for m in metas[1:])}
        b = Builder()
        for part, meta in zip(parts, metas):
            own = {k: v for k, v in meta.items() if k not in shared}
            if own:
                b.mark(**own)
            b.add(part.page_content)
        got = b.build()
        if not got.text.strip():
            continue
        suffix = Path(source).suffix.lower().lstrip(".")
        ours.append(
            Document(
                id=source,
                text=got.text,
                source=source,
                type=doc_type or suffix,
                metadata=shared if len(parts) > 1 else metas[0],
                marks=got.marks if len(parts) > 1 else [],
            )
        )
    return ours


def ingest_loader(kb: Any, loader: LoaderLike, *, config: Any = None, **kwargs: Any):
    """Ingest what `loader` yields into the knowledge base `kb` (folder or open TextIndex)."""
    from indexes.ingest import ingest_documents

    return ingest_documents(kb, documents_from_loader(loader), config=config, **kwargs)
