"""Integration: the real sample books through ingest -> clean -> Book JSON, runs, resume and CLI."""

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from novelcraft import cli
from novelcraft.errors import StructureError
from novelcraft.llm.server import free_port
from novelcraft.models import Book
from novelcraft.prep.blocks import join_blocks
from novelcraft.prep.book import prep_book
from novelcraft.prep.recipe import PrepRecipe
from novelcraft.prep.run import run_prep

EXPECTED = {
    "iron-heel.epub": (25, "The Iron Heel", "Jack London"),
    "frankenstein.epub": (28, "Frankenstein; Or, The Modern Prometheus", "Mary Wollstonecraft Shelley"),
    "alice-in-wonderland.epub": (12, "Alice’s Adventures in Wonderland", "Lewis Carroll"),
}


@pytest.fixture(scope="module")
def books(counter, books_dir):
    recipe = PrepRecipe(name="t", books=["unused"])
    return {name: prep_book(books_dir / name, recipe, counter) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chapter_counts_and_metadata(books, name):
    book = books[name]
    chapters, title, author = EXPECTED[name]
    assert book.meta.total_chapters == len(book.chapters) == chapters
    assert (book.meta.title, book.meta.author) == (title, author)
    assert [c.index for c in book.chapters] == list(range(1, chapters + 1))
    assert all(re.fullmatch(r"# Chapter \d+(: .+)?", c.heading) for c in book.chapters)
    assert all(c.text.startswith(c.heading + "\n\n") for c in book.chapters)


def test_iron_heel_foreword_is_reference(books):
    book = books["iron-heel.epub"]
    kinds = [r.kind for r in book.reference]
    assert "foreword" in kinds and "footnotes" in kinds
    assert book.chapters[0].heading == "# Chapter 1: My Eagle"
    assert "Everhard Manuscript" not in book.chapters[0].text  # the foreword is not chapter 1
    foreword = next(r for r in book.reference if r.kind == "foreword")
    assert foreword.text.startswith("It cannot be said that the Everhard Manuscript")
    notes = next(r for r in book.reference if r.kind == "footnotes")
    assert notes.text.startswith(
        "**CHAPTER I. MY EAGLE**\n\n[1] The Second Revolt was largely the work of Ernest Everhard"
    )
    assert "**CHAPTER II. CHALLENGES**" in notes.text
    assert "[5]" not in book.chapters[0].text and "fnref" not in notes.text


def test_frankenstein_letters_then_chapters(books):
    titles = [c.title for c in books["frankenstein.epub"].chapters]
    assert titles[:4] == ["Letter 1", "Letter 2", "Letter 3", "Letter 4"]
    assert [c.source_heading for c in books["frankenstein.epub"].chapters][4] == "Chapter 1"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_html_no_license_no_markup_left(books, name):
    book = books[name]
    # the Gutenberg header and licence are reference sections of their own kinds, never trained on
    kept = [r for r in book.reference if r.kind in ("gutenberg", "license")]
    assert kept and all("Gutenberg" in r.text for r in kept)
    everything = "\n".join([c.text for c in book.chapters] + [r.text for r in book.reference if r not in kept])
    assert not re.search(r"</?[a-zA-Z][^>]*>", everything)
    for bad in ("Gutenberg", "GUTENBERG", "gutenberg.org", "](#", ".xhtml", ".jpg", "{#", ":::"):
        assert bad not in everything, bad
    assert "*" in everything or name != "iron-heel.epub"  # italics kept


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invariants_and_exact_token_counts(books, counter, name):
    book = books[name]
    for ch in book.chapters:
        assert join_blocks(ch.blocks) == ch.text
        assert ch.tokens == counter.count(ch.text)
        assert [b.tokens for b in ch.blocks] == counter.count_batch([b.text for b in ch.blocks])
        assert all(b.tokens >= 75 for b in ch.blocks) or len(ch.blocks) == 1
        assert all(b.tokens <= 1000 for b in ch.blocks)
        scenes = [s for s in book.scenes if s.chapter_index == ch.index]
        rebuilt = scenes[0].text + "".join(ch.blocks[s.block_start].joiner + s.text for s in scenes[1:])
        assert rebuilt == ch.text
    assert [s.scene_id for s in book.scenes] == list(range(1, len(book.scenes) + 1))
    assert all(s.tokens == counter.count(s.text) <= 3000 for s in book.scenes)
    assert book.meta.total_scenes == len(book.scenes)
    assert Book.model_validate_json(book.model_dump_json()) == book


def test_book_matches_checked_in_schema(books):
    jsonschema = pytest.importorskip("jsonschema")
    from pathlib import Path

    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "book.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(books["alice-in-wonderland.epub"].model_dump(mode="json"))


def test_run_writes_stages_resolved_recipe_stats_and_resumes(make_recipe, counter):
    recipe = make_recipe()
    first = run_prep(recipe, counter=counter, progress=False)
    run = recipe.run_dir
    book_dir = run / "books" / "alice-in-wonderland"
    assert (run / "recipe.resolved.yaml").is_file() and (run / "stats.json").is_file()
    for f in ("01_ingest.md", "01_ingest.meta.json", "02_clean.json", "02_clean.md", "03_book.json", "manifest.json"):
        assert (book_dir / f).is_file(), f
    assert first.stats.items[0].stages_run == ["ingest", "clean", "book"]
    before = (book_dir / "03_book.json").read_bytes()
    second = run_prep(recipe, counter=counter, progress=False)
    assert second.stats.items[0].stages_skipped == ["ingest", "clean", "book"]
    assert (book_dir / "03_book.json").read_bytes() == before
    # a changed budget re-runs only the book stage
    third = run_prep(
        recipe.model_copy(
            update={
                "budgets": recipe.budgets.model_copy(
                    update={"scene": recipe.budgets.scene.model_copy(update={"target_max": 2500, "hard_max": 2500})}
                )
            }
        ),
        counter=counter,
        progress=False,
    )
    assert third.stats.items[0].stages_skipped == ["ingest", "clean"] and third.stats.items[0].stages_run == ["book"]
    stats = json.loads((run / "stats.json").read_text())
    assert stats["items"][0]["counts"]["chapters"] == 12


def test_interrupted_run_leaves_no_finished_looking_output(make_recipe, counter, monkeypatch, books_dir):
    import novelcraft.prep.stages as pipeline

    recipe = make_recipe(books=[str(books_dir / "alice-in-wonderland.epub"), str(books_dir / "frankenstein.epub")])
    real_build = pipeline.build_book
    calls = {"n": 0}

    def crash_on_second(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_build(*a, **kw)

    monkeypatch.setattr(pipeline, "build_book", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_prep(recipe, counter=counter, progress=False)
    frank = recipe.run_dir / "books" / "frankenstein"
    assert not (frank / "03_book.json").exists()
    assert "book" not in json.loads((frank / "manifest.json").read_text())
    assert not list(frank.glob(".*.tmp"))
    monkeypatch.setattr(pipeline, "build_book", real_build)
    result = run_prep(recipe, counter=counter, progress=False)
    assert [b.stages_run for b in result.stats.items] == [[], ["book"]]
    book = Book.model_validate_json((frank / "03_book.json").read_text())
    assert len({s.text for s in book.scenes}) == len(book.scenes) == book.meta.total_scenes


def test_book_without_chapters_fails_clearly(tmp_path, counter):
    md = tmp_path / "notes.md"
    md.write_text("Just a few words here.\n\nAnd a second paragraph.\n")
    with pytest.raises(StructureError, match=r"notes.md: structure: no detectable chapters"):
        prep_book(md, PrepRecipe(name="t", books=["x"]), counter)


def test_cli_prep_with_overrides_and_failures(tmp_path, books_dir, capsys):
    recipe = books_dir.parents[1] / "recipes" / "prep" / "default.yaml"
    out = tmp_path / "runs"
    # the CLI plumbing with the deterministic stages (the LLM stages have tests of their own)
    rc = cli.main(
        [
            "prep",
            str(recipe),
            f"books=[{books_dir / 'alice-in-wonderland.epub'}]",
            f"output_dir={out}",
            "name=cli",
            "llm=null",
            "segmentation.method=blocks",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert f"prep {out / 'cli'}: 1/1 ok" in capsys.readouterr().out
    bad = tmp_path / "bad.epub"
    bad.write_bytes(b"not a zip")
    rc = cli.main(
        [
            "prep",
            str(recipe),
            f"books=[{bad}]",
            f"output_dir={out}",
            "name=bad",
            "llm=null",
            "segmentation.method=blocks",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 1 and "FAILED" in captured.out and "bad.epub: ingest: corrupt EPUB" in captured.out
    assert "novelcraft: error: " in captured.err and "bad.epub: ingest: corrupt EPUB" in captured.err
    assert not (out / "bad" / "books" / "bad" / "01_ingest.md").exists()
    assert not (out / "bad" / "books" / "bad" / "01_ingest.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="the openai backend needs the openai package")
def test_llm_stages_that_cannot_start_leave_stats_saying_the_run_stopped(tmp_path, books_dir, capsys):
    recipe = books_dir.parents[1] / "recipes" / "prep" / "qwen3-openai.yaml"
    out = tmp_path / "runs"
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    args = [f"books=[{books_dir / 'alice-in-wonderland.epub'}]", f"output_dir={out}", "name=down"]
    args += [f"llm.openai.base_url={url}", "llm.retry.attempts=1", "--no-progress"]
    rc = cli.main(["prep", str(recipe), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "Connection refused" in err[-1] and err[-1].startswith("novelcraft: error: ")
    stats = json.loads((out / "down" / "stats.json").read_text())
    # stages 1-3 finished and say so; the run as a whole says it stopped, and why
    assert stats["items"][0]["status"] == "ok" and stats["items"][0]["stages_run"] == ["ingest", "clean", "book"]
    assert "Connection refused" in stats["error"] and err[-1].endswith(stats["error"])
    assert stats["stages"] == {} and not (out / "down" / "books" / "alice-in-wonderland" / "book.json").exists()
    assert cli.main(["validate", str(out / "down" / "stats.json")]) == 0  # a warning, not an error
    assert "warning: the run stopped before the end: " in capsys.readouterr().out


def test_cli_bad_recipe_is_one_line_nonzero(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("version: 1\nkind: prep\nname: x\nbooks: [a]\nbudgets: {scene: {hard_mx: 1}}\n")
    proc = subprocess.run([sys.executable, "-m", "novelcraft", "prep", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "r.yaml: budgets.scene.hard_mx: unknown key" in lines[0]


def test_gutenberg_plain_text_book_end_to_end(tmp_path, counter):
    para = ("The wind came down from the hills and rattled the shutters of the inn, and nobody slept.\n" * 5).strip()
    chapters = []
    for book_no, chs in (("I", ("I", "II")), ("II", ("I",))):
        chapters.append(f"BOOK {book_no}")
        for ch in chs:
            chapters += [f"CHAPTER {ch}.", "THE INN AT NIGHT", para, para]
    text = "\n\n".join(
        [
            "The Project Gutenberg eBook of Inn",
            "Title: The Inn",
            "Author: A. Writer",
            "*** START OF THE PROJECT GUTENBERG EBOOK THE INN ***",
            "PREFACE",
            "A short word before the tale begins, by the author of this book, who hopes the reader will forgive it.",
            *chapters,
            "THE END",
            "*** END OF THE PROJECT GUTENBERG EBOOK THE INN ***",
            "License text.",
        ]
    )
    src = tmp_path / "inn.txt"
    src.write_text(text, encoding="utf-8")
    book = prep_book(src, PrepRecipe(name="t", books=["x"]), counter)
    assert [c.heading for c in book.chapters] == ["# Chapter 1: The Inn at Night"] * 1 + [
        "# Chapter 2: The Inn at Night",
        "# Chapter 3: The Inn at Night",
    ]
    assert [c.part for c in book.chapters] == ["Book I", "Book I", "Book II"]
    assert book.meta.book_id == "the_inn_writer"
    assert all("License" not in c.text and "THE END" not in c.text for c in book.chapters)
    kinds = [r.kind for r in book.reference]
    assert [k for k in kinds if k not in ("gutenberg", "license", "end_marker")] == ["preface"]
    assert {"gutenberg", "license", "end_marker"} <= set(kinds)


def test_cli_validate_real_run_and_broken_book(make_recipe, counter, capsys):
    recipe = make_recipe()
    run_prep(recipe, counter=counter, progress=False)
    default = recipe.run_dir.parents[0]
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    rc = cli.main(
        ["validate", str(recipe.run_dir / "books"), "--recipe", str(root / "recipes" / "prep" / "default.yaml")]
    )
    assert rc == 0 and "no issues" in capsys.readouterr().out
    book_file = recipe.run_dir / "books" / "alice-in-wonderland" / "03_book.json"
    data = json.loads(book_file.read_text())
    data["scenes"][1]["scene_id"] = 1
    data["scenes"][2]["text"] = " ".join(str(i) for i in range(3000))
    broken = default / "broken.json"
    broken.write_text(json.dumps(data))
    rc = cli.main(["validate", str(broken), "--tokenizer", "Qwen/Qwen3-30B-A3B-Instruct-2507"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "broken.json" in out and "scene_id" in out and "budget is 3000" in out and "tokens field says" in out
