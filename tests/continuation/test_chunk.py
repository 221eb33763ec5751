"""Chunks: sentence ends from pysbd, exact slices of one chapter, sizes in sentences / tokens / share, budget."""

from __future__ import annotations

from novelcraft.continuation.chunk import chapter_body, chunk_book, chunk_chapter, select_chunks
from novelcraft.continuation.recipe import ChunkConfig, SelectConfig
from novelcraft.models import Chapter
from novelcraft.sentences import split_sentences

TEXT = (
    "Mr. Holmes looked up. “Well, Watson?” he said. It was 3 p.m. on a wet Tuesday.\n\n"
    "* * *\n\n"
    "The door opened,\nand a tall man came in. He was soaked! Was he\nfollowed? Nobody knew."
)


def _chapter(text: str, index: int = 1) -> Chapter:
    return Chapter(
        index=index,
        heading=f"# Chapter {index}",
        source_heading=f"CHAPTER {index}",
        text=f"# Chapter {index}\n\n{text}",
        word_count=len(text.split()),
        tokens=0,
    )


def test_sentences_respect_abbreviations_paragraphs_and_wrapped_lines():
    spans = split_sentences(TEXT)
    sentences = [TEXT[s.start : s.end] for s in spans]
    assert sentences == [
        "Mr. Holmes looked up.",
        "“Well, Watson?” he said.",
        "It was 3 p.m. on a wet Tuesday.",
        "The door opened,\nand a tall man came in.",
        "He was soaked!",
        "Was he\nfollowed?",
        "Nobody knew.",
    ]  # the ornament line is no sentence; the wrapped line is one sentence


def test_chunks_are_exact_slices_cut_at_sentence_ends():
    ch = _chapter(TEXT)
    [chunk] = chunk_chapter("b", ch, ChunkConfig(context=4, target=3))
    assert chunk.context.startswith("Mr. Holmes") and chunk.context.endswith("came in.")
    assert chunk.target == "He was soaked! Was he\nfollowed? Nobody knew."
    assert ch.text[chunk.start : chunk.split_at].rstrip() == chunk.context
    assert ch.text[chunk.split_at : chunk.end] == chunk.target
    assert (chunk.context_sentences, chunk.target_sentences, chunk.chunk_id) == (4, 3, "b/c1/k1")
    body, offset = chapter_body(ch)
    assert not body.startswith("#") and offset == len("# Chapter 1\n")


def test_a_short_rest_is_split_by_proportion_or_dropped():
    ch = _chapter(TEXT)  # 7 sentences
    [a, b] = chunk_chapter("b", ch, ChunkConfig(context=2, target=1, min_fraction=0.5))
    assert (a.context_sentences, a.target_sentences, b.context_sentences, b.target_sentences) == (2, 1, 2, 1)
    chunks = chunk_chapter("b", ch, ChunkConfig(context=4, target=4, min_fraction=1.0))
    assert chunks == []  # 7 of 8 sentences: below a full chunk
    [small] = chunk_chapter("b", ch, ChunkConfig(context=8, target=2, min_fraction=0.5))
    assert (small.context_sentences, small.target_sentences) == (5, 2)  # 7 sentences in the chunk's 8:2


def test_real_book_chunks_never_cross_chapters_nor_use_reference_material(book_of, counter):
    book, _ = book_of("alice-in-wonderland")
    chunks = chunk_book(book, ChunkConfig(context=30, target=8), counter)
    by_index = {c.index: c for c in book.chapters}
    assert {c.chapter_index for c in chunks} == set(by_index)  # every chapter, only chapters
    reference = "\n".join(r.text for r in book.reference)
    for c in chunks:
        text = by_index[c.chapter_index].text
        assert text[c.split_at : c.end] == c.target and text[c.start :].startswith(c.context)
        assert c.target not in reference
        assert c.context_sentences == 30 or c.index == max(
            x.index for x in chunks if x.chapter_index == c.chapter_index
        )
    assert all(c.context_tokens == counter.count(c.context) for c in chunks[:5])
    assert chunk_book(book, ChunkConfig(context=30, target=8), counter) == chunks  # deterministic


def test_token_and_share_units(book_of, counter):
    book, _ = book_of("alice-in-wonderland")
    by_tokens = chunk_book(book, ChunkConfig(unit="tokens", context=600, target=150), counter)
    full = [c for c in by_tokens if c.index < max(x.index for x in by_tokens if x.chapter_index == c.chapter_index)]
    assert full and all(c.context_tokens >= 600 - 5 and c.target_tokens >= 150 - 5 for c in full)
    assert all(c.context_tokens < 600 + 200 for c in full)  # whole sentences, not much over
    share = chunk_book(book, ChunkConfig(unit="share", chunk_sentences=50, context_share=0.6))
    for c in share:
        chars = len(c.context) + len(c.target)
        assert c.context_sentences + c.target_sentences <= 50
        assert 0.3 < len(c.context) / chars < 0.75


def test_record_budget_is_a_seeded_order_free_draw(book_of):
    book, _ = book_of("alice-in-wonderland")
    chunks = chunk_book(book, ChunkConfig(context=10, target=3))
    picked = select_chunks(chunks, SelectConfig(max_records=7, seed=1))
    assert len(picked) == 7 and picked == [c for c in chunks if c in picked]  # book order kept
    assert select_chunks(list(reversed(chunks)), SelectConfig(max_records=7, seed=1)) == list(reversed(picked))
    assert select_chunks(chunks, SelectConfig(max_records=7, seed=2)) != picked
    assert len({c.chapter_index for c in picked}) > 3  # spread over the book, not its first chapters
    assert len(select_chunks(chunks, SelectConfig(max_per_book=4))) == 4
    assert select_chunks(chunks, SelectConfig()) == chunks
