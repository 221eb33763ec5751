"""Invariants of the deterministic stage 5, on inline text and as property-based tests."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novelcraft.prep.blocks import (
    apply_boundaries,
    join_blocks,
    make_blocks,
    merge_scenes,
    split_long_paragraph,
    split_sentences,
    validate_boundaries,
)

SENT = "Ernest looked at the bishop and smiled, for he knew the argument was already won. "


def test_small_paragraphs_merge_forward_to_minimum(counter):
    text = "\n\n".join(["Yes.", "No.", SENT * 3, "Short.", SENT * 4, "End."])
    blocks = make_blocks(text, counter, min_tokens=75, max_tokens=1000)
    assert join_blocks(blocks) == text
    assert all(b.tokens >= 75 for b in blocks)
    assert [b.tokens for b in blocks] == counter.count_batch([b.text for b in blocks])
    assert blocks[0].paragraphs >= 3


def test_long_paragraph_is_split_at_sentences_never_dropped(counter):
    para = (SENT * 120).strip()
    assert counter.count(para) > 1000
    blocks = make_blocks(para, counter, min_tokens=75, max_tokens=300)
    assert len(blocks) > 3 and all(b.split for b in blocks)
    assert all(b.tokens <= 300 for b in blocks)
    assert join_blocks(blocks) == para
    assert all(b.text.endswith(".") for b in blocks)  # cut at sentence ends


def test_sentence_without_punctuation_split_at_words(counter):
    para = " ".join(["word"] * 3000)
    pieces = split_long_paragraph(para, counter, 500)
    assert "".join(j + p for j, p in pieces) == para
    assert all(counter.count(p) <= 500 for _, p in pieces)


def test_split_sentences_exact():
    s, j = split_sentences("“Stop!” he cried. She did not. Why?")
    assert (
        s == ["“Stop!” he cried.", "She did not.", "Why?"]
        or "".join(a + b for a, b in zip(j, s)) == "“Stop!” he cried. She did not. Why?"
    )
    assert "".join(a + b for a, b in zip(j, s)) == "“Stop!” he cried. She did not. Why?"


def test_boundaries_validation_messages():
    for starts, msg in [
        ([], "no scene boundaries"),
        ([1, 2], "start at block 0"),
        ([0, 2, 2], "strictly increasing"),
        ([0, 9], "out of range"),
    ]:
        with pytest.raises(ValueError, match=msg):
            validate_boundaries(5, starts)


def test_apply_boundaries_and_merge(counter):
    text = "\n\n".join([SENT * 8] * 12)
    blocks = make_blocks(text, counter)
    atomic = apply_boundaries(blocks, [0, 3, 5, 9])
    assert [len(a) for a in atomic] == [3, 2, 4, 3]
    scenes = merge_scenes(atomic, counter, max_tokens=1200)
    assert all(counter.count(join_blocks(s)) <= 1200 for s in scenes)
    assert [b.index for s in scenes for b in s] == list(range(len(blocks)))
    # an atomic scene over the cap is cut at block boundaries, not dropped
    scenes = merge_scenes([blocks], counter, max_tokens=500)
    assert [b.index for s in scenes for b in s] == list(range(len(blocks)))


paragraph = (
    st.text(alphabet=st.sampled_from(list("abcdefghij klmnop.,!?“”’—\n")), min_size=1, max_size=400)
    .map(lambda s: s.strip())
    .filter(lambda s: s and "\n\n" not in s)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    paras=st.lists(paragraph, min_size=1, max_size=25),
    min_t=st.integers(1, 80),
    max_t=st.integers(90, 400),
    cut=st.data(),
)
def test_property_join_reproduces_text_and_budgets_hold(counter, paras, min_t, max_t, cut):
    text = "\n\n".join(paras).strip()
    if not text:
        return
    blocks = make_blocks(text, counter, min_tokens=min_t, max_tokens=max_t)
    assert join_blocks(blocks) == text
    assert all(b.tokens <= max_t for b in blocks)
    if len(blocks) > 1:
        assert all(b.tokens >= min_t for b in blocks[:-1]) or any(b.split for b in blocks)
    starts = sorted(set([0] + cut.draw(st.lists(st.integers(0, len(blocks) - 1), max_size=6))))
    scenes = merge_scenes(apply_boundaries(blocks, starts), counter, max_tokens=max_t * 3)
    assert [b.index for s in scenes for b in s] == [b.index for b in blocks]
    assert join_blocks([b for s in scenes for b in s]) == text
    assert all(counter.count(join_blocks(s)) <= max_t * 3 for s in scenes)
