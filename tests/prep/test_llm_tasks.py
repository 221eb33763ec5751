"""``novelcraft.prep.llm_tasks``: request builders and gates of the LLM stages (pure)."""

from __future__ import annotations

from novelcraft.models import Block
from novelcraft.prep.llm_tasks import annotate_blocks, chapter_windows, check_boundaries, fallback_boundaries


def blocks_of(tokens):
    return [
        Block(index=i, text=f"Block {i}.", tokens=t, joiner="" if i == 0 else "\n\n", paragraphs=1)
        for i, t in enumerate(tokens)
    ]


def test_check_boundaries_gates():
    toks = [300, 300, 300, 300]
    assert check_boundaries([0, 2], toks, 1000) is None
    assert "start at block 0" in check_boundaries([1, 2], toks, 1000)
    assert "strictly increasing" in check_boundaries([0, 2, 2], toks, 1000)
    assert "out of range" in check_boundaries([0, 4], toks, 1000)
    assert "blocks 0-3 has 1200 tokens" in check_boundaries([0], toks, 1000)
    assert check_boundaries([0], [1200], 1000) is None  # one block may be over the cap


def test_fallback_boundaries_by_size():
    assert fallback_boundaries([300, 300, 300, 300, 900], 700) == [0, 2, 4]
    assert fallback_boundaries([50], 700) == [0]


def test_chapter_windows_cover_blocks_in_order():
    blocks = blocks_of([2000, 2500, 1000, 3000, 100])
    windows = chapter_windows(blocks, 5000, chapter_index=3)
    assert [w.offset for w in windows] == [0, 2]
    assert [b.index for w in windows for b in w.blocks] == [0, 1, 2, 3, 4]
    assert chapter_windows(blocks_of([9000]), 5000, 1)[0].blocks[0].tokens == 9000


def test_annotate_blocks_numbers_from_zero():
    text = annotate_blocks(blocks_of([80, 90])[0:2])
    assert text.startswith("[BLOCK 0 | 80 tokens]\nBlock 0.") and "[BLOCK 1 | 90 tokens]" in text
