"""Counts of joined texts derived from the counts of their parts (novelcraft.tokens.spans): the lemma on random
text, the derived counts against a full encode on random pieces and on every chapter of the test corpus."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novelcraft.recipes import TokenizerConfig
from novelcraft.tokens import SpanCounter, WordEstimateCounter, cut_spaces, load_token_counter

CORPUS = Path(__file__).resolve().parent / "data" / "corpus" / "books"


@pytest.fixture(scope="module")
def reference():
    """The reference counter: Rust tokenizers on the bundled Qwen3 tokenizer.json."""
    return load_token_counter(TokenizerConfig(backend="tokenizers"))


def test_cut_spaces():
    assert cut_spaces("Hello world, big") == (5, 12) and cut_spaces("Hello big world") == (5, 9)
    assert cut_spaces("Yes.") is None and cut_spaces("trailing ") is None and cut_spaces("two  ") is None
    assert cut_spaces("1 2") == (1, 1) and cut_spaces(" lead") == (0, 0) and cut_spaces("a  b") == (2, 2)
    # a space followed by punctuation, a space, a format, no-break or line character is no cut
    assert cut_spaces("* * *") is None and cut_spaces('said "Yes') is None and cut_spaces("a <|im_end|>") is None
    assert cut_spaces("a \u200bb \u00a0c \nd \u0301") is None
    assert cut_spaces("é ü") == (1, 1) and cut_spaces("Анна Каренина") == (4, 4) and cut_spaces("x ½") == (1, 1)


def test_no_canonical_mapping_of_a_printable_character_starts_with_whitespace():  # letters and digits included
    """The lemma's NFC step: after a cut space the normalized text starts with a non-whitespace character."""
    for c in map(chr, range(sys.maxunicode + 1)):
        if c != " " and c.isprintable():
            for form in ("NFC", "NFD"):
                first = unicodedata.normalize(form, c)[0]
                assert not first.isspace() and first.isprintable(), (hex(ord(c)), form)


def test_the_lemma_needs_its_conditions(reference):
    """Joins the lemma does not cover are not additive: the derivation must not cut there."""
    c = reference.count
    assert c('said "hi."\n\n') == 4 != c('said "hi."') + c("\n\n")
    assert c("\t \n") == 1 != c("\t") + c(" \n")  # a space followed by a line break is no cut space
    assert c("a\n \n") != c("a\n") + c(" \n")
    assert c("I'm here") == c("I'm") + c(" here")  # and where it applies they are


# Characters chosen for how the Qwen pre-tokenizer and NFC treat them: letters of several scripts,
# digits and number forms, contractions (with the long s that case-folds to s), punctuation runs, every
# kind of whitespace (line breaks, no-break, ideographic, the C0 separators, NEL, Mongolian vowel
# separator, zero width), combining marks (after spaces too), composition exclusions, Hangul jamo,
# emoji, an unassigned code point and added tokens.
_ALPHABET = [
    *"abcXYZ éüßЖж吾ñ",
    *"0123456789½²Ⅻ٣",
    *".,;:!?'’“”\"-—()*[]<>|",
    *" \t\n\r\x0b\x0c\x1c\x1f\x85\u00a0\u2028\u3000\u180e\u200b",
    "'s", "'LL", "'ſ", "n't", "\r\n", "\n\n", "  ",
    "e\u0301", "\u0301", "\u0316\u0301", "\u0958", "\u212a", "\u1100\u1161\u11a8", "\uac00",
    "🎉", "👩‍👧", "\u0378", "<|im_start|>", "<think>",
]  # fmt: skip
piece = st.one_of(
    st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=40).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
)
joiner = st.one_of(
    st.sampled_from(["\n\n", "\n\n  ", "\n \n", " ", "  ", "\n", "\t", "", "\n\n\n", "\r\n\r\n", " \n\n"]),
    st.lists(st.sampled_from(_ALPHABET), max_size=4).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(piece, min_size=1, max_size=4).map("".join))
def test_lemma_on_random_text(reference, text):
    """count(s) == count(s[:q]) + count(s[q:]) at every cut space q of random text."""
    assert reference.splits_at_spaces
    cuts = [q for q in range(len(text) - 1) if text[q] == " " and text[q + 1].isalnum()]
    found = cut_spaces(text)
    assert found == ((cuts[0], cuts[-1]) if cuts else None)
    counts = reference.count_batch([text, *(t for q in cuts for t in (text[:q], text[q:]))])
    whole, parts = counts[0], counts[1:]
    for k in range(len(cuts)):
        assert whole == parts[2 * k] + parts[2 * k + 1], (text, cuts[k])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.tuples(joiner, piece), min_size=1, max_size=12), data=st.data())
def test_span_counts_equal_full_counts(reference, counter, pieces, data):
    """Derived counts of random runs of random pieces and joiners equal a full encode of each run, with the
    reference and with the build's counter."""
    texts, joins = [p for _, p in pieces], [j for j, _ in pieces]
    runs = data.draw(st.lists(st.tuples(st.integers(0, len(texts) - 1), st.integers(1, len(texts))), max_size=8))
    runs = [(i, k) for i, k in runs if i < k] + [(0, len(texts))]
    for c in (reference, counter):
        spans = SpanCounter(c, texts, joins, c.count_batch(texts))
        assert spans.derived
        assert spans.count_runs(runs) == reference.count_batch([spans.text(i, k) for i, k in runs])


def test_span_counts_of_real_paragraphs_encode_little(reference, books_dir):
    from novelcraft.prep.blocks import split_paragraphs_exact

    text = "\n\n".join(p.read_bytes().decode("utf-8", "replace")[:200_000] for p in sorted(CORPUS.glob("*.txt"))[:3])
    paras, joins = split_paragraphs_exact(text.strip())
    spans = SpanCounter(reference, paras, joins, reference.count_batch(paras))
    runs = [(i, min(i + 7, len(paras))) for i in range(0, len(paras), 7)] + [(0, len(paras))]
    assert spans.count_runs(runs) == reference.count_batch([spans.text(i, k) for i, k in runs])
    assert spans.text(0, len(paras)) == text.strip()
    assert spans.encoded_chars < 0.25 * len(text)


def test_span_counts_without_the_lemma_count_in_full():
    est = WordEstimateCounter(1.3)
    spans = SpanCounter(est, ["one two", "three"], ["", "\n\n"], [est.count("one two"), est.count("three")])
    assert not spans.derived
    assert spans.count(0, 2) == est.count("one two\n\nthree") == 4 != spans.counts[0] + spans.counts[1]


def test_a_tokenizer_outside_the_lemma_is_not_derived(reference):
    """Another pre-tokenizer, a normalizer other than NFC, truncation or a token holding a space: full counts."""
    from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers

    from novelcraft.tokens import HFTokenCounter

    def variant(change):
        tok = Tokenizer.from_str(reference.tokenizer.to_str())
        change(tok)
        return HFTokenCounter(tok, "variant")

    def lowercase(t):
        t.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])

    def whitespace(t):
        t.pre_tokenizer = pre_tokenizers.Whitespace()

    def truncated(t):
        t.enable_truncation(8)

    def spaced(t):
        t.add_tokens([AddedToken("new york", special=False)])

    for change in (lowercase, whitespace, truncated, spaced):
        c = variant(change)
        assert not c.splits_at_spaces, change.__name__
        assert not SpanCounter(c, ["a b", "c d"], ["", "\n\n"], c.count_batch(["a b", "c d"])).derived


QUICK_BOOKS = ("christmas-carol.txt", "treasure-island.epub")


@pytest.mark.parametrize(
    "name",
    [
        *QUICK_BOOKS,
        *(pytest.param(p.name, marks=pytest.mark.slow) for p in sorted(CORPUS.iterdir()) if p.name not in QUICK_BOOKS),
    ],
)
def test_build_counts_equal_a_full_encode_on_the_corpus(counter, reference, name):
    """Every chapter and reference section of a corpus book, its blocks and its scenes, counted by the build
    (paragraph counts, derived runs) equal a full encode of each text by the reference tokenizer."""
    from novelcraft.prep.blocks import join_blocks
    from novelcraft.prep.book import prep_book
    from novelcraft.prep.recipe import PrepRecipe

    book = prep_book(CORPUS / name, PrepRecipe(name="t", books=["unused"]), counter)
    sections = [*book.chapters, *book.reference]
    blocks = [b for s in sections for b in s.blocks]
    assert blocks and book.scenes
    texts = [s.text for s in sections] + [b.text for b in blocks] + [s.text for s in book.scenes]
    got = [s.tokens for s in sections] + [b.tokens for b in blocks] + [s.tokens for s in book.scenes]
    assert got == reference.count_batch(texts)
    for s in sections:
        assert join_blocks(s.blocks) == s.text.strip()
