"""indexes: persistent FAISS-backed text and image indexes, embedders and ingestion.

Names load on first access, so `import indexes` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TextIndex",
    "Document",
    "Hit",
    "DocumentInfo",
    "ImageIndex",
    "Embedder",
    "get_embedder",
    "HashEmbedder",
    "ingest_paths",
    "IngestReport",
]

_WHERE = {
    "TextIndex": "indexes.text",
    "Document": "indexes.text",
    "Hit": "indexes.text",
    "DocumentInfo": "indexes.text",
    "ImageIndex": "indexes.images",
    "Embedder": "indexes.embedders",
    "get_embedder": "indexes.embedders",
    "HashEmbedder": "indexes.embedders",
    "ingest_paths": "indexes.ingest",
    "IngestReport": "indexes.ingest",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'indexes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
