import json

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.recipes import TokenizerConfig
from novelcraft.tokens import WordEstimateCounter, bundled_qwen3_tokenizer_file, load_token_counter


def test_default_counter_is_exact_qwen3(counter):
    assert "Qwen3" in counter.name
    # Qwen3 BPE facts: vocabulary size and a known encoding
    assert counter.tokenizer.get_vocab_size() >= 151643
    assert counter.encode("Hello world") == [9707, 1879]


def test_batch_counts_equal_single_counts(counter):
    texts = ["The soft summer wind stirs the redwoods.", "“Curiouser and curiouser!” cried Alice", "", "a\n\nb"]
    assert counter.count_batch(texts) == [counter.count(t) for t in texts]
    assert counter.count("") == 0


def test_local_tokenizer_path_and_folder(tmp_path):
    src = bundled_qwen3_tokenizer_file()
    by_file = load_token_counter(TokenizerConfig(name=str(src)))
    by_dir = load_token_counter(TokenizerConfig(name=str(src.parent)))
    assert by_file.count("Ernest Everhard") == by_dir.count("Ernest Everhard") > 0
    (tmp_path / "tokenizer.json").write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(NovelcraftError, match="not a tokenizers JSON"):
        load_token_counter(TokenizerConfig(name=str(tmp_path)))


def test_unknown_model_without_fallback_fails_clearly():
    with pytest.raises(NovelcraftError, match="neither a local path"):
        load_token_counter(TokenizerConfig(name="someone/not-a-qwen-model"))


def test_estimate_only_when_asked():
    c = load_token_counter(TokenizerConfig(method="estimate"))
    assert isinstance(c, WordEstimateCounter)
    assert c.count("one two three four five six seven eight nine ten") == 13
