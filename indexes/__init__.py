"""indexes: persistent FAISS-backed text and image indexes on one contract (`Index`), embedders and ingestion.

Names load on first access, so `import indexes` stays light.
"""

from __future__ import annotations

from polymodal.lazy import lazy_exports as _lazy_exports

__all__ = [
    "Index",
    "TextIndex",
    "ShardedTextIndex",
    "Document",
    "Hit",
    "DocumentInfo",
    "ImageIndex",
    "Embedder",
    "get_embedder",
    "HashEmbedder",
    "ingest_paths",
    "ingest_documents",
    "ingest_loader",
    "IngestReport",
    "read_file",
]

_WHERE = {
    "Index": "indexes.base",
    "TextIndex": "indexes.text",
    "ShardedTextIndex": "indexes.distributed.shards",
    "Document": "indexes.text",
    "Hit": "indexes.text",
    "DocumentInfo": "indexes.text",
    "ImageIndex": "indexes.images",
    "Embedder": "indexes.embedders",
    "get_embedder": "indexes.embedders",
    "HashEmbedder": "indexes.embedders",
    "ingest_paths": "indexes.ingest",
    "ingest_documents": "indexes.ingest",
    "ingest_loader": "indexes.loaders",
    "IngestReport": "indexes.ingest",
    "read_file": "indexes.readers",
}


__getattr__, __dir__ = _lazy_exports("indexes", _WHERE, globals(), __all__)
