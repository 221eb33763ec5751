"""Token counters: the reference (Rust tokenizers), the word estimate, the fast engines behind the same
interface, their parity check and the fallback to the reference."""

import importlib.util
import json
import logging
import re
import sys
import unicodedata
from pathlib import Path

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.recipes import TokenizerConfig
from novelcraft.tokens import (
    PARITY_PROBES,
    FastTokenCounter,
    HFTokenCounter,
    TiktokenCore,
    WordEstimateCounter,
    bundled_qwen3_tokenizer_file,
    load_token_counter,
    parity_failures,
    select_counter,
)


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


# --------------------------------------------------------------------------- backends and parity

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "corpus" / "books"
HAVE_TIKTOKEN = importlib.util.find_spec("tiktoken") is not None
HAVE_BPE_QWEN = importlib.util.find_spec("bpe_qwen") is not None
needs_tiktoken = pytest.mark.skipif(not HAVE_TIKTOKEN, reason="tiktoken is not installed")


@pytest.fixture(scope="module")
def reference():
    """The reference counter: Rust tokenizers on the bundled Qwen3 tokenizer.json."""
    return load_token_counter(TokenizerConfig(backend="tokenizers"))


@pytest.fixture(scope="module")
def epub_paragraphs(books_dir):
    """Every paragraph of the cleaned chapters and reference sections of the sample EPUBs."""
    from novelcraft.prep.book import clean_raw_book
    from novelcraft.prep.ingest import ingest_book
    from novelcraft.prep.recipe import PrepRecipe

    recipe = PrepRecipe(name="t", books=["unused"])
    paras: list[str] = []
    for path in sorted(books_dir.glob("*.epub")):
        clean = clean_raw_book(ingest_book(path), recipe)
        paras += [p for s in clean.chapters + clean.reference for p in [s.heading, *s.paragraphs]]
    return paras


@pytest.fixture(scope="module")
def corpus_text_paragraphs():
    """Paragraphs of the plain-text corpus books, by book (decoded as ingest decodes them)."""
    from novelcraft.prep.structure.encoding import decode_text

    out: dict[str, list[str]] = {}
    for path in sorted(CORPUS.glob("*.txt")):
        text = decode_text(path.read_bytes(), str(path), None).text
        out[path.name] = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return out


def _corpus_epub_paragraphs() -> list[str]:
    from novelcraft.prep.book import clean_raw_book
    from novelcraft.prep.ingest import ingest_book
    from novelcraft.prep.recipe import PrepRecipe

    recipe = PrepRecipe(name="t", books=["unused"])
    paras: list[str] = []
    for path in sorted(CORPUS.glob("*.epub")):
        clean = clean_raw_book(ingest_book(path), recipe)
        paras += [p for s in clean.chapters + clean.reference for p in [s.heading, *s.paragraphs]]
    return paras


def test_reference_uses_encode_batch_fast_with_identical_counts(reference, epub_paragraphs):
    assert reference.backend == "tokenizers" and reference._encode_batch == reference.tokenizer.encode_batch_fast
    slow = [len(e.ids) for e in reference.tokenizer.encode_batch(epub_paragraphs, add_special_tokens=False)]
    assert reference.count_batch(epub_paragraphs) == slow


@needs_tiktoken
def test_auto_is_tiktoken_and_identical_on_book_paragraphs(counter, reference, epub_paragraphs):
    assert isinstance(counter, FastTokenCounter) and counter.backend == "tiktoken"
    assert counter.name == reference.name  # counts are the tokenizer's: finished work stays valid
    assert parity_failures(counter, reference) == []
    want = [reference.encode(p) for p in epub_paragraphs]
    assert [counter.core.encode_text(p) for p in epub_paragraphs] == want
    assert counter.count_batch(epub_paragraphs) == [len(w) for w in want]


@needs_tiktoken
@pytest.mark.parametrize("limit", [pytest.param(150, id="first-150-each"), pytest.param(None, marks=pytest.mark.slow)])
def test_tiktoken_identical_on_corpus_paragraphs(counter, reference, corpus_text_paragraphs, limit):
    """Every paragraph of the corpus (with its EPUBs through ingest and clean: slow), or the first 150 of each
    plain-text book: identical counts, and identical ids for what the engine takes whole."""
    paras = [p for ps in corpus_text_paragraphs.values() for p in ps[:limit]]
    if limit is None:
        paras += _corpus_epub_paragraphs()
    assert len(paras) > 2500
    assert counter.count_batch(paras) == reference.count_batch(paras)
    engine = [p for p in paras if counter.engine_takes(p)]
    assert len(engine) > 0.95 * len(paras)
    assert [counter.core.encode_text(p) for p in engine[:: 1 if limit else 5]] == [
        reference.encode(p) for p in engine[:: 1 if limit else 5]
    ]


@needs_tiktoken
def test_texts_the_engine_cannot_take_go_to_the_reference(counter, reference):
    """Not NFC (also between added tokens) or holding a code point Python's tables do not know: the reference
    counts; the engine alone would miscount the first."""
    decomposed = "cafe\u0301 e\u0301te\u0301"
    assert counter.core.count_texts([decomposed]) != [reference.count(decomposed)]
    assert not counter.engine_takes(decomposed) and counter.count(decomposed) == reference.count(decomposed)
    for text in ("a\u0378b", "x\U000e0080", "<|im_start|>" + decomposed, decomposed + "<|im_end|>", "\u0357\u07fd"):
        assert not counter.engine_takes(text)
        assert counter.count(text) == reference.count(text), repr(text)
    assert counter._count_with_added("<|im_start|>" + decomposed) is None  # routed, not split
    texts = ["plain", decomposed, "<|im_start|>ok", "a\u0378b", "Zoë"]
    assert counter.count_batch(texts) == reference.count_batch(texts)
    with pytest.raises(TypeError):  # a lone surrogate: refused by the reference, not replaced by the engine
        counter.count("a\ud800")


def test_known_code_points_agree_with_unicodedata():
    from novelcraft.tokens.fast import known_code_points

    for c in map(chr, [*range(0x80, 0x30000, 7), *range(0xE0000, 0x110000, 101), 0x0378, 0x1FAE9, 0x10FFFF]):
        if not 0xD800 <= ord(c) < 0xE000:  # surrogates: below
            assert known_code_points("a" + c) == (unicodedata.category(c) != "Cn"), hex(ord(c))
    assert not known_code_points("a\ud800") and not known_code_points("\udfff")


@needs_tiktoken
def test_every_code_point_counts_as_the_reference(counter, reference):
    """Each code point in contexts that exercise the pre-tokenizer's classes (letter runs, digits, punctuation
    runs, whitespace before it, a contraction, a line break): identical counts, and identical ids where the
    engine takes the text whole."""
    cps = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"]
    texts = []
    for k in range(0, len(cps), 48):
        texts.append("".join(f"a{c}b {c}1{c}. {c}{c}'s\n{c} " for c in map(chr, cps[k : k + 48])))
    assert counter.count_batch(texts) == reference.count_batch(texts)
    engine = [t for t in texts if counter.engine_takes(t)]
    assert len(engine) > 0.5 * len(texts)
    assert [counter.core.encode_text(t) for t in engine] == [reference.encode(t) for t in engine]


@needs_tiktoken
def test_counts_identical_on_binary_read_as_text(counter, reference):
    """An EPUB's bytes decoded as text: control characters, replacement characters, stray combining marks
    (``'\u0357\u07fd'``, which Python's NFC reorders and the tokenizer's does not)."""
    junk = (CORPUS / "war-and-peace.epub").read_bytes()[:400_000].decode("utf-8", errors="replace")
    chunks = [junk[i : i + 2000] for i in range(0, len(junk), 2000)]
    assert counter.count_batch(chunks) == reference.count_batch(chunks)
    assert counter.count("\u0357\u07fd") == reference.count("\u0357\u07fd")


@needs_tiktoken
def test_added_tokens_count_one_each(counter, reference):
    chat = (
        "<|im_start|>system\nYou write novels.<|im_end|>\n<|im_start|>user\nGo on.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert counter.count(chat) == reference.count(chat) == len(reference.encode(chat))
    assert reference.encode("<|im_start|>") == [151644]
    assert counter.count("<|im_start|>") == 1 and counter.count("<|im_start|") == reference.count("<|im_start|") > 1
    texts = ["plain text", chat, "<think>\n\n</think>\n\nYes.", "", "<|endoftext|><|endoftext|>"]
    assert counter.count_batch(texts) == reference.count_batch(texts)
    # the engine alone does not know added tokens: the counter's split is what makes it exact
    assert counter.core.count_texts(["<|im_start|>"]) != [1]


@needs_tiktoken
def test_added_tokens_that_strip_whitespace_go_to_the_reference(reference):
    from tokenizers import AddedToken, Tokenizer

    tok = Tokenizer.from_str(reference.tokenizer.to_str())
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, special=True)])
    ref = HFTokenCounter(tok, "qwen3 + <mask>")
    fast = FastTokenCounter(ref, TiktokenCore.from_tokenizer(tok), "tiktoken")
    assert fast._route_added and not ref.splits_at_spaces  # a stripping token voids the split lemma
    texts = ["a <mask> b", "two  <mask>  spaces", "<mask>", "no mask here"]
    assert fast.count_batch(texts) == ref.count_batch(texts)
    assert parity_failures(fast, ref) == []


@needs_tiktoken
def test_a_wrong_engine_fails_parity_and_falls_back(reference, caplog):
    """An engine that splits text differently (GPT-2's pattern groups digits) is caught and not used."""
    import tiktoken

    def gpt2_pattern(tok):
        core = TiktokenCore.from_tokenizer(tok)
        gpt2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
        ranks = core.encoding._mergeable_ranks
        return TiktokenCore(tiktoken.Encoding("wrong", pat_str=gpt2, mergeable_ranks=ranks, special_tokens={}))

    wrong = FastTokenCounter(reference, gpt2_pattern(reference.tokenizer), "tiktoken")
    assert any("DON'T SHOUT" in p for p in parity_failures(wrong, reference))
    with caplog.at_level(logging.WARNING, logger="novelcraft.tokens"):
        chosen = select_counter(reference, [("tiktoken", gpt2_pattern)], requested="tiktoken")
    assert chosen is reference
    assert "differs from tokenizers" in caplog.text and "using tokenizers" in caplog.text


def test_a_missing_engine_falls_back_with_the_reason(reference, caplog):
    def missing(tok):
        import novelcraft_no_such_engine  # noqa: F401

    with caplog.at_level(logging.INFO, logger="novelcraft.tokens"):
        assert select_counter(reference, [("tiktoken", missing)], requested="auto") is reference
    assert "not installed" in caplog.text and "novelcraft_no_such_engine" in caplog.text


def test_backend_tokenizers_and_unknown_backend(reference):
    import typing

    from novelcraft.tokens import FAST_BACKENDS

    assert typing.get_args(TokenizerConfig.model_fields["backend"].annotation) == ("auto", "tokenizers", *FAST_BACKENDS)
    assert isinstance(reference, HFTokenCounter)
    with pytest.raises(ValueError, match="backend"):
        TokenizerConfig(backend="sentencepiece")


@pytest.fixture(scope="module")
def bpe_qwen(reference):
    """A counter on bpe-qwen's engine over the reference's vocabulary, built directly (no parity check)."""
    if not HAVE_BPE_QWEN:
        pytest.skip("bpe-qwen is not installed (optional: pip install bpe-qwen)")
    from novelcraft.tokens import BpeQwenCore

    return FastTokenCounter(reference, BpeQwenCore.from_tokenizer(reference.tokenizer), "bpe-qwen")


def test_bpe_qwen_only_when_identical(reference, bpe_qwen, epub_paragraphs, caplog):
    """bpe-qwen (0.1.5) pre-tokenizes ``'a ½'`` unlike the tokenizer, but the counter sends such texts to the
    reference (``core.routes``): the parity check passes and the engine is chosen when named; whichever is
    chosen, counts are the reference's."""
    problems = parity_failures(bpe_qwen, reference)
    with caplog.at_level(logging.INFO, logger="novelcraft.tokens"):
        chosen = select_counter(reference, [("bpe-qwen", lambda tok: bpe_qwen.core)], requested="bpe-qwen")
    assert problems == [] and chosen is not reference and chosen.backend == "bpe-qwen"
    assert chosen.count_batch(epub_paragraphs) == reference.count_batch(epub_paragraphs)
    # on book prose without those characters the engine itself agrees
    assert bpe_qwen.core.count_texts(epub_paragraphs) == reference.count_batch(epub_paragraphs)


def test_bpe_qwen_routes_the_characters_it_classes_otherwise(reference, bpe_qwen):
    """Non-ASCII numbers and whitespace after a space, marks and symbols after a run of spaces: the engine
    alone pre-tokenizes them otherwise; the counter routes every text holding one to the reference."""
    texts = ["a ½", "a ୦", "a Ⅷ", "a \u00a0", "a  \u0345", "a  Ⓐ", "a \u2028"]
    want = reference.count_batch(texts)
    assert all(bpe_qwen.core.encode_text(t) != reference.encode(t) for t in texts), "the routing is still needed"
    assert not any(bpe_qwen.engine_takes(t) for t in texts)
    assert bpe_qwen.count_batch(texts) == want and [bpe_qwen.count(t) for t in texts] == want
    assert bpe_qwen.engine_takes("Zoë’s café — naïve") and bpe_qwen.engine_takes("Анна 吾輩 Ἐν")


@pytest.mark.slow
def test_bpe_qwen_agrees_on_every_code_point_it_takes(reference, bpe_qwen):
    """Each code point bpe-qwen is not routed away from, in contexts that exercise the pre-tokenizer's classes
    (after letters, one space, runs of spaces, a tab, digits, punctuation, a contraction, a line break):
    the engine's ids are the reference's; with the routed ones, the counter's counts are the reference's."""
    from novelcraft.tokens.fast import bpe_qwen_routes

    cps = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"]
    taken = [chr(c) for c in cps if not bpe_qwen_routes(chr(c))]
    texts = [
        "".join(f"a{c}b {c}1{c}. {c}{c}'s\n{c} a  {c}   {c}\t{c} " for c in taken[k : k + 48])
        for k in range(0, len(taken), 48)
    ]
    engine = [t for t in texts if bpe_qwen.engine_takes(t)]
    assert len(engine) > 0.9 * len(texts)
    assert [bpe_qwen.core.encode_text(t) for t in engine] == [reference.encode(t) for t in engine]
    every = ["".join(f"a {c} a  {c}" for c in map(chr, cps[k : k + 48])) for k in range(0, len(cps), 48)]
    assert bpe_qwen.count_batch(every) == reference.count_batch(every)


def test_bpe_qwen_special_tokens_count_one_each(reference, bpe_qwen):
    """bpe-qwen alone splits ``<|im_start|>`` into pieces; behind the counter each added token counts one."""
    chat = "<|im_start|>system\nYou write novels.<|im_end|>\n<|im_start|>user\nGo on.<|im_end|>\n"
    assert bpe_qwen.core.count_texts(["<|im_start|>"])[0] > 1
    assert bpe_qwen.count("<|im_start|>") == 1 == reference.count("<|im_start|>")
    texts = [chat, "<think>\n\n</think>\n\nYes.", "<|endoftext|><|endoftext|>", "<|im_start", "plain"]
    assert bpe_qwen.count_batch(texts) == reference.count_batch(texts)


def test_a_truncating_tokenizer_keeps_the_reference(reference, caplog):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(reference.tokenizer.to_str())
    tok.enable_truncation(16)
    ref = HFTokenCounter(tok, "truncating")
    with caplog.at_level(logging.WARNING, logger="novelcraft.tokens"):
        assert select_counter(ref, [("tiktoken", TiktokenCore.from_tokenizer)], requested="auto") is ref
    assert "not a plain BPE" in caplog.text


def test_probe_set_covers_the_hard_cases():
    joined = "".join(PARITY_PROBES)
    for needle in ("<|im_start|>", "e\u0301", "\t", "  ", "\r\n", "1234567890", "吾輩", "👩‍👩‍👧", "a" * 300, "'LL"):
        assert needle in joined, needle


def test_short_texts_are_remembered_and_the_memory_stays_bounded(reference, monkeypatch):
    from novelcraft.tokens import TiktokenCore, fast

    core = TiktokenCore.from_tokenizer(reference.tokenizer)
    encoded: list[str] = []
    real = fast.memo_counts
    monkeypatch.setattr(
        fast, "memo_counts", lambda count, memo, texts: real(lambda t: (encoded.append(t), count(t))[1], memo, texts)
    )
    words = ["The", " said", "\u201cI", "Alice,", "The", " said", "x" * 40, "x" * 40]
    got = core.count_texts(words)
    assert got == reference.count_batch(words)
    # each short text encoded once; a text over SHORT_TEXT characters every time (not remembered)
    assert encoded == ["The", " said", "\u201cI", "Alice,", "x" * 40, "x" * 40]
    monkeypatch.setattr(fast, "MEMO_ENTRIES", 3)
    assert core.count_texts(words + ["new", "words", "here"]) == reference.count_batch(words + ["new", "words", "here"])
    assert len(core._memo) <= 3  # emptied when full
