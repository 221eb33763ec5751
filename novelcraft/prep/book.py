"""Stage 3 - Book JSON: chapters and reference sections with token-budgeted blocks, plus scenes."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from ..errors import StructureError
from ..models import Block, Book, BookMeta, Chapter, ReferenceSection, Scene
from ..tokens import TokenCounter
from .blocks import apply_boundaries, join_blocks, make_blocks_counted, merge_scenes_counted
from .clean import CleanBook, Section, clean_document
from .ingest import RawBook, ingest_book
from .recipe import PrepRecipe


def slugify(text: str) -> str:
    """An ASCII identifier of ``text`` for ids and file names: 'Les Misérables' -> 'les_miserables'."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def make_book_id(title: str, author: str | None) -> str:
    """'The Iron Heel', 'Jack London' -> 'the_iron_heel_london'."""
    surname = slugify(author.split()[-1]) if author and author.split() else ""
    base = slugify(title)[:60].strip("_") or "book"
    return f"{base}_{surname}" if surname else base


def count_words(text: str) -> int:
    """Whitespace-separated words of ``text`` (the word counts of the Book JSON)."""
    return len(text.split())


def _scenes_for(blocks: list[Block], counter: TokenCounter, recipe: PrepRecipe) -> list[tuple[list[Block], int]]:
    """(scene blocks, exact scene tokens) for one chapter or reference section."""
    if not blocks or recipe.segmentation.method == "none":
        return []
    atomic = apply_boundaries(blocks, list(range(len(blocks))))
    return merge_scenes_counted(atomic, counter, max_tokens=recipe.budgets.scene.hard_max)


def scene_from_blocks(
    scene_id: int,
    group: list[Block],
    tokens: int,
    chapter_index: int,
    chapter_title: str | None,
    *,
    is_reference: bool = False,
) -> Scene:
    """A scene made of consecutive blocks of one chapter (or reference section)."""
    return Scene(
        scene_id=scene_id,
        chapter_index=chapter_index,
        chapter_title=chapter_title,
        text=join_blocks(group),
        tokens=tokens,
        is_reference=is_reference,
        block_start=group[0].index,
        block_end=group[-1].index,
    )


def build_book(raw: RawBook, clean: CleanBook, counter: TokenCounter, recipe: PrepRecipe) -> Book:
    """Assemble the Book JSON: exact token counts, blocks per chapter, scenes by the recipe's segmentation."""
    if not clean.chapters:
        raise StructureError(
            "no detectable chapters: no heading or paragraph reads like a chapter ('CHAPTER I', 'Chapter 1', "
            f"'Letter 1', a roman numeral) and no titled section has {recipe.clean.min_chapter_words}+ words",
            path=raw.meta.source_file,
            step="structure",
        )
    budgets = recipe.budgets
    kept = clean.chapters[: recipe.max_chapters] if recipe.max_chapters else clean.chapters
    sections: list[Section] = kept + clean.reference
    chapters: list[Chapter] = []
    reference: list[ReferenceSection] = []
    scenes: list[Scene] = []
    ref_scenes: list[tuple[ReferenceSection, list[tuple[list[Block], int]]]] = []
    for sec in sections:
        # each paragraph is encoded once; block, scene and section counts are derived from those counts
        text = sec.text
        blocks, ntok = make_blocks_counted(
            text, counter, min_tokens=budgets.block.min_tokens, max_tokens=budgets.block.max_tokens
        )
        if text != text.strip():  # the blocks cover the stripped text; the section's own count covers all of it
            ntok = counter.count(text)
        if sec.kind == "chapter":
            ch = Chapter(
                index=len(chapters) + 1,
                title=sec.title,
                heading=sec.heading,
                source_heading=sec.source_heading,
                part=sec.part,
                containers=list(sec.containers),
                text=text,
                word_count=count_words(text),
                tokens=ntok,
                blocks=blocks,
            )
            chapters.append(ch)
            # With LLM segmentation the narrative scenes are cut in stage 5, not here.
            narrative_groups = [] if recipe.segmentation.method == "llm" else _scenes_for(blocks, counter, recipe)
            for group, ntok_scene in narrative_groups:
                scenes.append(scene_from_blocks(len(scenes) + 1, group, ntok_scene, ch.index, ch.title))
        else:
            ref = ReferenceSection(
                index=len(reference) + 1,
                kind=sec.kind,
                title=sec.title or sec.heading,
                text=text,
                word_count=count_words(text),
                tokens=ntok,
                blocks=blocks,
            )
            reference.append(ref)
            if recipe.segmentation.include_reference and sec.kind in recipe.segmentation.reference_kinds:
                ref_scenes.append((ref, _scenes_for(blocks, counter, recipe)))
    # Narrative scenes come first (their order drives NOVEL PROGRESS); reference scenes follow, flagged.
    for ref, groups in ref_scenes:
        for group, ntok_scene in groups:
            scenes.append(scene_from_blocks(len(scenes) + 1, group, ntok_scene, 0, ref.title, is_reference=True))
    title = clean.display_title or raw.meta.title or Path(raw.meta.source_file).stem
    author = raw.meta.author or "Unknown"
    meta = BookMeta(
        book_id=make_book_id(title, raw.meta.author),
        title=title,
        author=author,
        word_count=sum(c.word_count for c in chapters),
        total_chapters=len(chapters),
        total_scenes=len(scenes),
        world_context=None,
        language=raw.meta.language,
        source_id=raw.meta.source_id,
        source_file=raw.meta.source_file,
        source_sha256=raw.meta.source_sha256,
    )
    return Book(meta=meta, chapters=chapters, reference=reference, scenes=scenes)


def clean_raw_book(raw: RawBook, recipe: PrepRecipe) -> CleanBook:
    """Stage 2 over an ingested book, configured by the recipe."""
    return clean_document(
        raw.document, title=raw.meta.title, author=raw.meta.author, config=recipe.clean, source=raw.meta.source_file
    )


def prep_book(path: str | Path, recipe: PrepRecipe, counter: TokenCounter) -> Book:
    """Ingest, clean and build one book in memory (no files written)."""
    override = recipe.clean.override_for(str(path))
    raw = ingest_book(path, encoding=override.encoding if override else None)
    return build_book(raw, clean_raw_book(raw, recipe), counter, recipe)
