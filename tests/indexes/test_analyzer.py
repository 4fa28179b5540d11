"""The BM25 analyzer: Snowball stems, recorded in the manifest; an index built with another
analyzer is re-analysed on open (FTS rebuilt from stored text, vectors untouched)."""

import json

import numpy as np

from indexes.analyzer import ANALYZER, LEGACY_ANALYZER, analyze, get_analyzer
from indexes.embedders import HashEmbedder
from indexes.text import Document, TextIndex


def test_snowball_joins_word_forms_the_light_stripper_split():
    assert analyze("speed speeds speeding") == ["speed"] * 3
    assert analyze("embedded embedding") == ["embed"] * 2
    light = get_analyzer(LEGACY_ANALYZER)
    assert light("speed speeds") == ["spe", "speed"]  # the old analyzer's known fault
    assert analyze("边缘计算的模型 runs") == ["边缘", "计算", "模型", "run"]


def test_an_index_built_with_another_analyzer_is_reanalysed_on_open(tmp_path, capsys):
    docs = [
        Document("a", "The car reached top speed on the track."),
        Document("b", "Gardens need water in summer."),
    ]
    with TextIndex.open(tmp_path / "kb", HashEmbedder(), analyzer=LEGACY_ANALYZER) as kb:
        kb.add(docs)
        assert kb.manifest["analyzer"] == LEGACY_ANALYZER
        before = kb.store.vectors(list(map(int, kb.store.ids())))
        # under the old analyzer "speed" is indexed as "spe": the new query stem finds nothing
        assert [r[0] for r in kb._conn.execute("SELECT tokens FROM chunks_fts")][0].split()[3] == "spe"
    # an index from before analyzers were recorded has no key: it is the legacy one
    manifest = json.loads((tmp_path / "kb" / "manifest.json").read_text())
    del manifest["analyzer"]
    (tmp_path / "kb" / "manifest.json").write_text(json.dumps(manifest))

    with TextIndex.open(tmp_path / "kb", read_only=True) as ro:  # read-only: queries analysed the old way
        assert ro.analyzer == LEGACY_ANALYZER and ro.search("speed", k=1, mode="bm25")[0].doc_id == "a"
        assert ro.search("speeds", k=1, mode="bm25") == []  # the old fault: speeds -> speed, speed -> spe

    with TextIndex.open(tmp_path / "kb", show_progress=True) as kb:
        assert kb.analyzer == ANALYZER and kb.manifest["analyzer"] == ANALYZER
        assert kb.search("speed", k=1, mode="bm25")[0].doc_id == "a"
        assert kb.search("speeds", k=1, mode="bm25")[0].doc_id == "a"
        after = kb.store.vectors(list(map(int, kb.store.ids())))
        assert before.keys() == after.keys() and all(np.array_equal(before[i], after[i]) for i in before)
    assert "re-analysing BM25" in capsys.readouterr().err
    assert json.loads((tmp_path / "kb" / "manifest.json").read_text())["analyzer"] == ANALYZER
