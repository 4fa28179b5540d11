"""Indexes spread over Ray workers or several folders (extra `distributed` for the Ray parts; the
cluster connection is polymodal/cluster.py): `ingest.py` and `images.py` (workers read, chunk,
embed; the driver commits), `shards.py` (a knowledge base in S shards, one fused ranking). Nothing
here imports Ray at module import; each function connects when called."""
