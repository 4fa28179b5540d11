import numpy as np
import pytest

from indexes.embedders import HashEmbedder, cjk_ratio, get_embedder
from polymodal.errors import ConfigError


def test_hash_embedder_is_deterministic_and_normalised():
    e = HashEmbedder(32)
    a = e.embed_documents(["edge ai on devices", "边缘AI"])
    assert a.shape == (2, 32) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a, HashEmbedder(32).embed_documents(["edge ai on devices", "边缘AI"]))
    sim = e.embed_documents(["edge ai devices"]) @ a.T
    assert sim[0, 0] > sim[0, 1]


def test_registry_and_errors():
    assert get_embedder("hash") is get_embedder("hash")
    assert get_embedder("hash-16").dim == 16
    with pytest.raises(ConfigError):
        get_embedder("nosuchmodule_xyz:Thing")
    assert cjk_ratio("边缘AI") == pytest.approx(0.5)


@pytest.mark.slow
def test_onnx_backend_reproduces_torch_vectors_and_int8_stays_close():
    texts = ["a cat sleeping on a sofa", "边缘设备运行小模型", "retrieval with citations " * 20]
    torch_vecs = get_embedder("all-MiniLM-L6-v2", "torch").embed_documents(texts)
    onnx = get_embedder("all-MiniLM-L6-v2", "onnx")
    assert onnx.name == "all-MiniLM-L6-v2"  # same vector space, same name
    assert np.min(np.sum(torch_vecs * onnx.embed_documents(texts), axis=1)) > 0.9999
    int8 = get_embedder("all-MiniLM-L6-v2", "onnx-int8")
    assert int8.name == "all-MiniLM-L6-v2@int8"
    assert np.min(np.sum(torch_vecs * int8.embed_documents(texts), axis=1)) > 0.95
    # the recorded name resolves back to the same int8 embedder, whatever backend is asked for
    assert get_embedder("all-MiniLM-L6-v2@int8") is int8
    assert get_embedder("all-MiniLM-L6-v2@int8", "onnx-int8") is int8
    assert onnx.count_tokens("hello world") == 2


@pytest.mark.slow
def test_multilingual_embedder_separates_topics_in_chinese():
    e = get_embedder("use-multilingual-v3")
    v = e.embed_documents(["猫在沙发上睡觉", "一只小猫咪", "股票市场今天下跌"])
    assert v.shape == (3, 512)
    assert v[0] @ v[1] > v[0] @ v[2]
