"""Builders of compile inputs: filled and inline books, compile recipes, the folder layout prep leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.dataset import CompileRecipe
from novelcraft.io import atomic_write_json
from novelcraft.models import Book, BookMeta, Scene
from novelcraft.prep.book import prep_book
from novelcraft.prep.recipe import PrepRecipe

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "data" / "books"
#: the persona of every recipe built by ``recipe()``.
SYSTEM = "You are a novelist."


@pytest.fixture(scope="session")
def fill(world, summary_for, instruction_for):
    """``fill(book)``: a copy of ``book`` with the fields the LLM stages write, from real pydantic objects."""

    def fill(book: Book) -> Book:
        book = book.model_copy(deep=True)
        book.meta.world_context = world().render()
        for s in book.scenes:
            s.instruction = instruction_for(s).render()
            s.running_summary = summary_for(s).render()
        return book

    return fill


@pytest.fixture(scope="session")
def tiny_book():
    """``tiny_book(book_id, narrative, reference, words)``: an inline filled book, ``narrative`` chapter
    scenes then ``reference`` flagged scenes."""

    def tiny_book(book_id: str = "tiny_book", narrative: int = 4, reference: int = 2, words: int = 30) -> Book:
        scenes = []
        for i in range(narrative + reference):
            ref = i >= narrative
            text = f"{book_id} scene {i + 1}. " + " ".join(f"w{i}x{j}" for j in range(words))
            scenes.append(
                Scene(
                    scene_id=i + 1,
                    chapter_index=0 if ref else 1 + i // 2,
                    chapter_title="Foreword" if ref else None,
                    text=text,
                    is_reference=ref,
                    instruction=f"# Scene Instruction\n\n## SCENE GOAL: goal {i + 1}",
                    running_summary=f"# Running Summary\n\nafter scene {i + 1}",
                )
            )
        meta = BookMeta(
            book_id=book_id,
            title=book_id.title(),
            author="Anon",
            word_count=words * narrative,
            total_chapters=max(1, narrative // 2),
            total_scenes=len(scenes),
            world_context="# Novel World Context\n\nA place.",
        )
        return Book(meta=meta, scenes=scenes)

    return tiny_book


@pytest.fixture(scope="session")
def recipe():
    """``recipe(tmp_path=None, **fields)``: a compile recipe with the :data:`SYSTEM` persona; with
    ``tmp_path`` its data set goes to ``tmp_path/datasets``."""

    def recipe(tmp_path: Path | None = None, **kw) -> CompileRecipe:
        data = {"name": "t", "books": ["unused"], "system_prompt": {"text": SYSTEM}}
        if tmp_path is not None:
            data["output_dir"] = str(tmp_path / "datasets")
        data.update(kw)
        return CompileRecipe.model_validate(data)

    return recipe


@pytest.fixture(scope="session")
def write_run_layout():
    """``write_run_layout(root, books)``: ``books/<stem>/{02_clean.json, 03_book.json, 07_instructions.json,
    book.json}`` as prep leaves them; returns the ``books`` folder."""

    def write_run_layout(root: Path, books: list[Book]) -> Path:
        for b in books:
            d = root / "books" / b.meta.book_id
            atomic_write_json(d / "02_clean.json", {"chapters": [], "reference": []})
            bare = b.model_copy(deep=True)
            bare.meta.world_context = None
            atomic_write_json(d / "03_book.json", bare)
            atomic_write_json(d / "07_instructions.json", {"1": {"scene_goal": "x"}})
            atomic_write_json(d / "book.json", b)
            atomic_write_json(d / "manifest.json", {})
        return root / "books"

    return write_run_layout


@pytest.fixture(scope="module")
def alice(counter, fill) -> Book:
    """Alice's Adventures in Wonderland prepared with the default recipe, then filled."""
    return fill(prep_book(BOOKS / "alice-in-wonderland.epub", PrepRecipe(name="t", books=["x"]), counter))
