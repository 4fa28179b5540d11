"""Scale-out on Ray (extra `distributed`; the cluster connection is polymodal/cluster.py):
`ingest.py` (knowledge-base ingestion: workers read, chunk, embed; the driver commits). Nothing
here imports Ray at module import; each function connects when called."""
