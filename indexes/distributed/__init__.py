"""Indexes spread over Ray workers or several folders (extra `distributed` for the Ray parts; the
cluster connection is polymodal/cluster.py): `ingest.py` and `images.py` (workers read, chunk,
embed; the driver commits), `shards.py` (a knowledge base in S shards, one fused ranking),
`ann_build.py` (large IVF builds: actors add slices, the driver merges). Each leaves its result
where the single-process code would. Nothing here imports Ray at module import."""
