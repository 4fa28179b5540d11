from indexes.chunking import chunk_text, split_sentences
from indexes.embedders import approx_tokens


def test_chinese_sentences_split_at_chinese_punctuation():
    text = "大模型很强。边缘设备很小！能否结合？可以；但要量化。"
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == [
        "大模型很强。",
        "边缘设备很小！",
        "能否结合？",
        "可以；",
        "但要量化。",
    ]


def test_decimal_points_do_not_end_sentences():
    text = "Pi is 3.14 roughly. Next one."
    assert [text[s.start : s.end] for s in split_sentences(text)] == ["Pi is 3.14 roughly.", "Next one."]


def test_chunks_respect_token_budget_and_keep_offsets():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(60))
    spans = chunk_text(text, approx_tokens, chunk_tokens=40, overlap=10)
    assert len(spans) > 5
    for s in spans:
        piece = text[s.start : s.end]
        assert piece == piece.strip() and piece
        assert approx_tokens(piece) <= 40
    # every sentence is covered by some chunk
    covered = set()
    for s in spans:
        covered.update(range(s.start, s.end))
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())


def test_overlap_repeats_trailing_sentences():
    text = "。".join(f"第{i}句话讲的是边缘计算" for i in range(30)) + "。"
    spans = chunk_text(text, approx_tokens, chunk_tokens=30, overlap=12)
    assert any(b.start < a.end for a, b in zip(spans, spans[1:])), "consecutive chunks should overlap"
    assert all(b.start > a.start for a, b in zip(spans, spans[1:])), "chunking must always advance"


def test_markdown_headings_start_new_chunks_and_are_kept():
    text = "# Intro\nHello world. Short.\n\n## Edge AI\nDevices run models. They are small.\n"
    spans = chunk_text(text, approx_tokens, chunk_tokens=500, overlap=0, markdown=True)
    assert [s.heading for s in spans] == ["Intro", "Edge AI"]
    assert "Devices run models" in text[spans[1].start : spans[1].end]
    assert "Devices" not in text[spans[0].start : spans[0].end]


def test_overlong_sentence_is_cut_into_windows():
    text = "word " * 500
    spans = chunk_text(text.strip(), approx_tokens, chunk_tokens=50, overlap=0)
    assert len(spans) >= 10
    assert all(approx_tokens(text[s.start : s.end]) <= 55 for s in spans)


def test_zero_budget_keeps_text_whole():
    text = "  one. two. three.  "
    [span] = chunk_text(text, approx_tokens, chunk_tokens=0)
    assert text[span.start : span.end] == "one. two. three."
