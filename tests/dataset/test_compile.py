"""``novelcraft.dataset``: prompt shape, sequences, budgets, splits, files, determinism, CLI, HF export."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
import yaml

from novelcraft import cli
from novelcraft.chat_format import (
    DEFAULT_OPENING_SUMMARY,
    default_system_prompt,
    progress_percent,
    render_chatml,
    render_summary_section,
    render_user_turn,
    scene_messages,
)
from novelcraft.dataset import (
    CompileRecipe,
    SplitConfig,
    compile_books,
    dataset_stats,
    load_compiled,
    read_jsonl,
    resolve_book_files,
    run_compile,
    split_records,
)
from novelcraft.errors import NovelcraftError, RecipeError
from novelcraft.io import atomic_write_json
from novelcraft.models import Book, BookMeta, Instruction, RunningSummary, Scene, WorldContext
from novelcraft.prep.book import prep_book
from novelcraft.prep.recipe import PrepRecipe
from novelcraft.recipes import Budgets, load_recipe, recipe_from_dict
from novelcraft.validate import has_errors, validate_file, validate_paths

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "data" / "books"
PEER_SAMPLE = ROOT / "tests" / "data" / "peer_sample.jsonl"
PEER_FINAL = ROOT.parent / "shared" / "reference" / "lora-novel-craft" / "json_final_Jack_London-The_Iron_Heel.jsonl"
HAS_DATASETS = importlib.util.find_spec("datasets") is not None

SYSTEM = "You are a novelist."


# --------------------------------------------------------------------------- builders


def world(subject: str = "Alice") -> WorldContext:
    return WorldContext(
        tone_style="Victorian fairy tale told with dry wit; bright, absurd, quick dialogue, sensory nonsense.",
        world_rules="Dream logic rules Wonderland: size changes with food and drink, animals talk, trials are farces.",
        protagonist_conditions=f"{subject}, a curious and polite girl, wants to reach the lovely garden and go home.",
        factions="The Queen of Hearts and her card court rule by decree; the Duchess, the Hatter and the Hare resist.",
        locations="The rabbit-hole, the hall of doors, the Duchess's kitchen, the tea-party, the croquet ground.",
        narrative_engine="Curiosity against arbitrary authority: each encounter tests what sense Alice can keep.",
    )


def summary_for(scene: Scene) -> RunningSummary:
    where = scene.chapter_title or f"chapter {scene.chapter_index}"
    return RunningSummary(
        scene_end_state=f"Scene {scene.scene_id} ends in {where} with Alice pausing to think.",
        emotional_beat="Bewildered curiosity edged with impatience.",
        immediate_tension="A new creature appears and the way forward is unclear.",
        global_events=f"Alice fell down the rabbit-hole, changed size, and has reached {where}.",
        unresolved_threads="Will she reach the garden? Who stole the tarts?",
        world_state="Wonderland stays absurd and indifferent to her sense.",
        active_characters="Alice; the White Rabbit; the Queen of Hearts.",
        global_shift="Her confidence grows with each absurd encounter.",
    )


def instruction_for(scene: Scene) -> Instruction:
    return Instruction(
        scene_goal=f"Move Alice through scene {scene.scene_id} of {scene.chapter_title or 'the book'}.",
        characters_present=["Alice", "the White Rabbit"],
        emotional_beat="wonder",
        constraints="keep the narrator's playful voice",
    )


def fill(book: Book) -> Book:
    """A copy of ``book`` with the fields the LLM stages write, from real pydantic objects."""
    book = book.model_copy(deep=True)
    book.meta.world_context = world().render()
    for s in book.scenes:
        s.instruction = instruction_for(s).render()
        s.running_summary = summary_for(s).render()
    return book


def tiny_book(book_id: str = "tiny_book", narrative: int = 4, reference: int = 2, words: int = 30) -> Book:
    """An inline filled book: ``narrative`` chapter scenes then ``reference`` flagged scenes."""
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
        book_id=book_id, title=book_id.title(), author="Anon", word_count=words * narrative,
        total_chapters=max(1, narrative // 2), total_scenes=len(scenes),
        world_context="# Novel World Context\n\nA place.",
    )
    return Book(meta=meta, scenes=scenes)


def recipe(tmp_path: Path | None = None, **kw) -> CompileRecipe:
    data = {"name": "t", "books": ["unused"], "system_prompt": {"text": SYSTEM}}
    if tmp_path is not None:
        data["output_dir"] = str(tmp_path / "datasets")
    data.update(kw)
    return CompileRecipe.model_validate(data)


def section(user: str, name: str) -> str:
    return user.split(f"<{name}>\n", 1)[1].split(f"\n</{name}>", 1)[0]


def small_budgets(max_tokens: int) -> Budgets:
    return Budgets.model_validate(
        {
            "record": {"max_tokens": max_tokens, "system": 0, "world_context": 0, "running_summary": 0,
                       "instruction": 0, "buffer": 0},
            "scene": {"target_min": 10, "target_max": 20, "hard_max": 30},
            "atomic": {"min_tokens": 1, "goldilocks_min": 2, "goldilocks_max": 3, "max_tokens": 4},
            "block": {"min_tokens": 1, "max_tokens": 2},
        }
    )


@pytest.fixture(scope="module")
def alice(counter) -> Book:
    return fill(prep_book(BOOKS / "alice-in-wonderland.epub", PrepRecipe(name="t", books=["x"]), counter))


# --------------------------------------------------------------------------- prompt shape


def test_progress_percent() -> None:
    assert [progress_percent(n, 4) for n in range(1, 5)] == [0, 25, 50, 75]
    assert progress_percent(1, 1) == 0
    assert progress_percent(2, 8) == 13  # 12.5 rounds half up
    assert progress_percent(53, 53) == 98
    for bad in [(0, 4), (5, 4), (1, 0)]:
        with pytest.raises(ValueError):
            progress_percent(*bad)


def test_render_user_turn_exact_shape() -> None:
    user = render_user_turn("  WORLD\n", "SUMMARY", 42, "\nINSTRUCTION ")
    assert user == (
        "<world_context>\nWORLD\n</world_context>\n"
        "<running_summary>\nNOVEL PROGRESS: 42%\n\nSUMMARY\n</running_summary>\n"
        "<scene_instruction>\nINSTRUCTION\n</scene_instruction>"
    )
    with pytest.raises(ValueError, match="world_context is empty"):
        render_user_turn(" ", "s", 0, "i")
    with pytest.raises(ValueError):
        render_user_turn("w", "s", 101, "i")


def test_summary_section_is_the_models_progress_rendering() -> None:
    rs = summary_for(Scene(scene_id=3, chapter_index=1, chapter_title="Pool of Tears", text="x"))
    assert render_summary_section(rs.render(), 37) == rs.render(37)
    wc, ins = world(), instruction_for(Scene(scene_id=3, chapter_index=1, text="x"))
    user = render_user_turn(wc.render(), rs.render(), 37, ins.render())
    assert section(user, "world_context") == wc.render()
    assert section(user, "running_summary") == rs.render(37)
    assert section(user, "scene_instruction") == ins.render()


def test_scene_messages_and_chat_template() -> None:
    msgs = scene_messages(SYSTEM, "W", "S", 0, "I", "  The scene.\n")
    assert [m.role for m in msgs] == ["system", "user", "assistant"]
    assert msgs[2].content == "The scene."
    assert render_chatml(msgs) == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{msgs[1].content}<|im_end|>\n"
        "<|im_start|>assistant\nThe scene.<|im_end|>\n"
    )
    prompt = scene_messages(SYSTEM, "W", "S", 0, "I")
    assert [m.role for m in prompt] == ["system", "user"]
    rendered = render_chatml(prompt, add_generation_prompt=True)
    assert rendered.endswith("<|im_end|>\n<|im_start|>assistant\n") and "<think>" not in rendered
    assert render_chatml([m.model_dump() for m in msgs]) == render_chatml(msgs)


def test_default_system_prompt_fits_its_budget(counter) -> None:
    text = default_system_prompt()
    assert "NOVEL PROGRESS: XX%" in text
    assert counter.count(text) <= Budgets().record.system


# --------------------------------------------------------------------------- sequences and policies


def test_summary_of_the_previous_scene_and_progress(counter) -> None:
    book = tiny_book(narrative=4, reference=2)
    result = compile_books([book], recipe(reference_scenes="keep", split={"validation_fraction": 0}), counter)
    assert result.validation == []
    recs = result.train
    assert [r.meta.scene_id for r in recs] == [1, 2, 3, 4, 5, 6]
    assert [r.meta.progress_percent for r in recs] == [0, 25, 50, 75, 0, 50]
    assert [r.meta.is_reference for r in recs] == [False] * 4 + [True] * 2
    assert [(r.meta.position, r.meta.sequence_length) for r in recs] == [(1, 4), (2, 4), (3, 4), (4, 4), (1, 2), (2, 2)]
    summaries = [section(r.record.messages[1].content, "running_summary") for r in recs]
    assert summaries[0] == f"NOVEL PROGRESS: 0%\n\n{DEFAULT_OPENING_SUMMARY}"
    assert summaries[1] == "NOVEL PROGRESS: 25%\n\n# Running Summary\n\nafter scene 1"
    assert summaries[3].endswith("after scene 3")
    # the reference sequence opens anew and never sees narrative summaries
    assert summaries[4] == f"NOVEL PROGRESS: 0%\n\n{DEFAULT_OPENING_SUMMARY}"
    assert summaries[5].endswith("after scene 5")
    for r, scene in zip(recs, book.scenes):
        assert r.record.messages[0].content == SYSTEM
        assert r.record.messages[2].content == scene.text
        assert section(r.record.messages[1].content, "scene_instruction") == scene.instruction
        assert "is_reference" not in json.dumps(r.record.model_dump())  # the flag lives in the sidecar only
        assert r.meta.record_id == f"tiny_book/{scene.scene_id}"


def test_reference_scenes_dropped_by_default(counter) -> None:
    result = compile_books([tiny_book(narrative=3, reference=2)], recipe(split={"validation_fraction": 0}), counter)
    assert [r.meta.scene_id for r in result.train] == [1, 2, 3]
    assert result.stats.reference_scenes_dropped == 2 and result.stats.dropped == []
    assert "2 reference (recipe)" in result.summary()


def test_custom_opening_summary(counter) -> None:
    r = recipe(opening_summary="Before the story: a quiet town.", split={"validation_fraction": 0})
    first = compile_books([tiny_book()], r, counter).train[0]
    assert section(first.record.messages[1].content, "running_summary").endswith("Before the story: a quiet town.")


def test_missing_fields_fail_names_book_and_scene(counter) -> None:
    book = tiny_book(narrative=4, reference=0)
    book.scenes[2].instruction = None
    with pytest.raises(NovelcraftError) as exc:
        compile_books([book], recipe(), counter, sources=["books/tiny/07_book.json"])
    msg = str(exc.value)
    assert msg.startswith("books/tiny/07_book.json: compile: book tiny_book: scene 3: missing instruction")
    assert "on_missing=drop" in msg

    book = tiny_book(narrative=4, reference=0)
    book.scenes[1].running_summary = "  "
    with pytest.raises(NovelcraftError, match=r"scene 3: missing running_summary of scene 2 \(the previous scene\)"):
        compile_books([book], recipe(), counter)

    book = tiny_book(narrative=2, reference=0)
    book.meta.world_context = None
    with pytest.raises(NovelcraftError, match=r"scene 1: missing meta.world_context \(and 1 more scene\)"):
        compile_books([book], recipe(), counter)


def test_missing_fields_drop_is_reported(counter) -> None:
    book = tiny_book(narrative=5, reference=0)
    book.scenes[1].running_summary = None  # scene 3 cannot get its summary
    book.scenes[3].instruction = None  # scene 4 has no instruction
    book.scenes[4].running_summary = None  # the last summary is never used: harmless
    result = compile_books([book], recipe(on_missing="drop", split={"validation_fraction": 0}), counter)
    assert [r.meta.scene_id for r in result.train] == [1, 2, 5]
    assert [r.meta.progress_percent for r in result.train] == [0, 20, 80]  # positions keep the whole sequence
    assert [(d.scene_id, d.reason, d.detail) for d in result.stats.dropped] == [
        (3, "missing", "missing running_summary of scene 2 (the previous scene)"),
        (4, "missing", "missing instruction"),
    ]
    assert result.stats.books[0].dropped == 2
    assert "dropped scenes: 2 missing" in result.summary()


def test_over_budget_drop_and_fail(counter) -> None:
    book = tiny_book(narrative=3, reference=0, words=20)
    book.scenes[1].text = "A much longer scene. " + " ".join(f"word{j}" for j in range(300))
    probe = compile_books([book], recipe(split={"validation_fraction": 0}), counter).train
    sizes = [r.meta.tokens for r in probe]
    # every count is the exact count of the record rendered with the chat template
    assert sizes == [counter.count(render_chatml(r.record.messages)) for r in probe]
    limit = max(sizes[0], sizes[2], 256)
    assert sizes[1] > limit
    r = recipe(budgets=small_budgets(limit).model_dump(), split={"validation_fraction": 0})
    result = compile_books([book], r, counter)
    assert [x.meta.scene_id for x in result.train] == [1, 3]  # a record of exactly max_tokens is kept
    (dropped,) = result.stats.dropped
    assert (dropped.scene_id, dropped.reason) == (2, "over_budget")
    assert dropped.detail.startswith(f"{sizes[1]} tokens as ChatML, budget is {limit} (budgets.record.max_tokens)")
    assert result.stats.histogram[-1] == (f"> {limit} (dropped)", 1)

    r_fail = recipe(budgets=small_budgets(limit).model_dump(), on_over_budget="fail")
    with pytest.raises(NovelcraftError, match=r"budget: book tiny_book: scene 2: \d+ tokens as ChatML"):
        compile_books([book], r_fail, counter)


def test_duplicate_book_ids_are_refused(counter) -> None:
    with pytest.raises(NovelcraftError, match="two books have book_id 'tiny_book' \\(a.json and b.json\\)"):
        compile_books([tiny_book(), tiny_book()], recipe(), counter, sources=["a.json", "b.json"])


# --------------------------------------------------------------------------- split


def test_split_by_scene_is_seeded_and_order_independent() -> None:
    keys = [f"b{i % 3}/{i}" for i in range(50)]
    books = [k.split("/")[0] for k in keys]
    cfg = SplitConfig(by="scene", validation_fraction=0.2, seed=7)
    held, summary = split_records(keys, books, cfg)
    assert sum(held) == 10 and summary.effective_by == "scene"
    assert split_records(keys, books, cfg)[0] == held
    other, _ = split_records(keys, books, SplitConfig(by="scene", validation_fraction=0.2, seed=8))
    assert other != held
    # the held-out set does not depend on the order the records arrive in
    order = list(range(50))
    random.Random(1).shuffle(order)
    shuffled, _ = split_records([keys[i] for i in order], [books[i] for i in order], cfg)
    assert {keys[i] for i, h in zip(order, shuffled) if h} == {k for k, h in zip(keys, held) if h}


def test_split_by_book() -> None:
    keys = [f"book{b}/{s}" for b in range(5) for s in range(1, 4)]
    books = [k.split("/")[0] for k in keys]
    held, summary = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.2, seed=0))
    assert len(summary.validation_books) == 1
    assert {b for b, h in zip(books, held) if h} == set(summary.validation_books)
    assert sum(held) == 3
    # never every book, always at least one when the fraction is above zero
    _, most = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.99))
    assert len(most.validation_books) == 4
    _, least = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.01))
    assert len(least.validation_books) == 1
    none, _ = split_records(keys, books, SplitConfig(by="book", validation_fraction=0))
    assert not any(none)


def test_split_with_one_book() -> None:
    keys = [f"only/{i}" for i in range(10)]
    books = ["only"] * 10
    held, summary = split_records(keys, books, SplitConfig(by="book", validation_fraction=0.3))
    assert sum(held) == 3 and summary.effective_by == "scene" and "fell back" in (summary.note or "")
    with pytest.raises(NovelcraftError, match="split.by is 'book' but only 1 book has records"):
        split_records(keys, books, SplitConfig(by="book", validation_fraction=0.3, when_one_book="error"))
    assert split_records(["only/1"], ["only"], SplitConfig(by="scene", validation_fraction=0.5))[0] == [False]


# --------------------------------------------------------------------------- recipe


def test_recipe_checks(tmp_path: Path) -> None:
    base = {"version": 1, "kind": "compile", "name": "x", "books": ["b"]}
    assert isinstance(recipe_from_dict(base), CompileRecipe)
    with pytest.raises(RecipeError, match="give system_prompt.text or system_prompt.file, not both"):
        recipe_from_dict({**base, "system_prompt": {"text": "a", "file": "b"}})
    with pytest.raises(RecipeError, match="split.seeds: unknown key"):
        recipe_from_dict({**base, "split": {"seeds": 3}})
    with pytest.raises(RecipeError, match="export.formats has duplicates"):
        recipe_from_dict({**base, "export": {"formats": ["jsonl", "jsonl"]}})
    with pytest.raises(RecipeError, match="split.validation_fraction"):
        recipe_from_dict({**base, "split": {"validation_fraction": 1.0}})
    with pytest.raises(RecipeError, match="on_over_budget"):
        recipe_from_dict({**base, "on_over_budget": "truncate"})


def test_default_recipe_file_loads() -> None:
    r = load_recipe(ROOT / "recipes" / "compile" / "default.yaml", ["split.seed=3"])
    assert isinstance(r, CompileRecipe)
    assert r.books == ["runs/sample/books"] and r.run_dir == Path("runs/datasets/sample") and r.split.seed == 3
    # the file spells out the defaults
    assert r == CompileRecipe(name="sample", books=["runs/sample/books"], split={"seed": 3})
    assert validate_file(ROOT / "recipes" / "compile" / "default.yaml") == []


def test_system_prompt_sources(tmp_path: Path) -> None:
    f = tmp_path / "persona.txt"
    f.write_text("\nYou write sea stories.\n", encoding="utf-8")
    assert recipe(system_prompt={"file": str(f)}).system_prompt.resolve() == "You write sea stories."
    assert CompileRecipe(name="x", books=["b"]).system_prompt.resolve() == default_system_prompt()
    with pytest.raises(NovelcraftError, match="system_prompt: cannot read the system prompt file"):
        recipe(system_prompt={"file": str(tmp_path / "missing.txt")}).system_prompt.resolve()


# --------------------------------------------------------------------------- real book, files, determinism


def test_real_book_with_real_tokenizer(alice: Book, counter) -> None:
    r = recipe(system_prompt={}, split={"validation_fraction": 0})
    result = compile_books([alice], r, counter)
    narrative = [s for s in alice.scenes if not s.is_reference]
    assert [x.meta.scene_id for x in result.train] == [s.scene_id for s in narrative]
    for x in result.train:
        total = counter.count(render_chatml(x.record.messages))
        assert x.meta.tokens == total <= 4096
        assert x.meta.scene_tokens == counter.count(x.record.messages[2].content)
        assert x.record.messages[0].content == default_system_prompt()
    stats = result.stats
    assert stats.tokens["record"].max <= 4096 and stats.tokens["record"].count == len(narrative)
    assert stats.tokens["world_context"].max == counter.count(alice.meta.world_context)
    assert stats.narrative_context_ratio == round(stats.tokens["scene"].total / stats.tokens["context"].total, 3)
    assert sum(n for _, n in stats.histogram) == len(narrative)


def write_run_layout(root: Path, books: list[Book]) -> Path:
    """books/<stem>/{02_clean.json, 03_book.json, 07_instructions.json, book.json} as prep leaves them."""
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


def test_resolve_book_files_picks_the_final_book(tmp_path: Path) -> None:
    books_dir = write_run_layout(tmp_path, [tiny_book("aaa"), tiny_book("bbb"), tiny_book("ccc")])
    (books_dir / "ccc" / "book.json").unlink()  # no final Book: the latest numbered stage holding a Book
    found = resolve_book_files([str(books_dir)])
    expected = ["aaa/book.json", "bbb/book.json", "ccc/03_book.json"]
    assert found == [books_dir / name for name in expected]
    assert resolve_book_files([str(books_dir / "aaa" / "03_book.json")]) == [books_dir / "aaa" / "03_book.json"]
    assert resolve_book_files([str(books_dir / "*" / "book.json")]) == found[:2]
    assert resolve_book_files([str(books_dir)], ["[0-9][0-9]_*.json"])[0] == books_dir / "aaa" / "03_book.json"
    with pytest.raises(NovelcraftError, match="^nope: inputs: no such file or directory$"):
        resolve_book_files(["nope"])
    with pytest.raises(NovelcraftError, match="inputs: no Book JSON files"):
        resolve_book_files([str(tmp_path / "*.none")])


def test_run_compile_writes_a_valid_deterministic_data_set(tmp_path: Path, alice: Book, counter) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [alice, tiny_book("zzz_tiny", narrative=6)])
    r = recipe(tmp_path, books=[str(books_dir)], system_prompt={}, split={"by": "book", "validation_fraction": 0.5})
    result = run_compile(r, counter)
    run_dir = tmp_path / "datasets" / "t"
    assert result.run_dir == str(run_dir) and not result.skipped
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["README.md", "manifest.json", "recipe.resolved.yaml", "stats.json", "train.jsonl",
                     "train.meta.jsonl", "validation.jsonl", "validation.meta.jsonl"]
    assert json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))["details"]["inputs"] == [
        str(books_dir / alice.meta.book_id / "book.json"), str(books_dir / "zzz_tiny" / "book.json")
    ]
    # by book: each book wholly in one split
    val_books = set(result.stats.split.validation_books)
    assert len(val_books) == 1
    assert {x.meta.book_id for x in result.validation} == val_books
    assert not {x.meta.book_id for x in result.train} & val_books

    # the written data set validates with the real tokenizer: no errors, no warnings
    issues = validate_paths([run_dir], counter=counter)
    assert issues == [], "\n".join(i.format() for i in issues)
    rows = read_jsonl(run_dir / "train.jsonl")
    metas = read_jsonl(run_dir / "train.meta.jsonl")
    assert len(rows) == len(metas) == len(result.train)
    assert rows[0] == result.train[0].record.model_dump() and set(rows[0]) == {"messages"}

    card = (run_dir / "README.md").read_text(encoding="utf-8")
    for needle in ("## Books", "| `alices_adventures_in_wonderland_carroll` |", "## Tokens per record",
                   "Narrative:context ratio", "## Budget histogram", "## Split", "```yaml\nversion: 1\nkind: compile"):
        assert needle in card
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    assert stats["details"]["dataset"]["records"] == {"train": len(result.train), "validation": len(result.validation)}
    assert yaml.safe_load((run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))["kind"] == "compile"

    # unchanged inputs and recipe: skipped, same records read back
    again = run_compile(r, counter)
    assert again.skipped and again.model_dump(exclude={"skipped", "seconds"}) == result.model_dump(
        exclude={"skipped", "seconds"}
    )
    # forced: byte-identical data files
    data_files = [n for n in names if n not in ("stats.json", "manifest.json")]  # timings live there
    before = {n: (run_dir / n).read_bytes() for n in data_files}
    forced = run_compile(r, counter, force=True)
    assert not forced.skipped
    assert {n: (run_dir / n).read_bytes() for n in data_files} == before
    # another seed: another split, and the change is picked up without --force
    reseed = SplitConfig(by="book", validation_fraction=0.5, seed=1)
    reseeded = run_compile(r.model_copy(update={"split": reseed}), counter)
    assert not reseeded.skipped
    assert load_compiled(run_dir).stats.split.seed == 1


def test_stale_validation_split_is_removed(tmp_path: Path, counter) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("one", narrative=6)])
    r = recipe(tmp_path, books=[str(books_dir)], split={"by": "scene", "validation_fraction": 0.3})
    run_compile(r, counter)
    run_dir = tmp_path / "datasets" / "t"
    assert (run_dir / "validation.jsonl").is_file()
    result = run_compile(r.model_copy(update={"split": SplitConfig(validation_fraction=0)}), counter)
    assert result.validation == [] and not (run_dir / "validation.jsonl").exists()
    assert not (run_dir / "validation.meta.jsonl").exists()
    assert "validation.jsonl" not in (run_dir / "README.md").read_text(encoding="utf-8")


def test_run_compile_errors_name_the_file(tmp_path: Path, counter) -> None:
    bad = tmp_path / "book.json"
    bad.write_text('{"meta": {"book_id": "x"}, "scenes": []}', encoding="utf-8")
    with pytest.raises(NovelcraftError) as exc:
        run_compile(recipe(tmp_path, books=[str(bad)]), counter)
    assert str(exc.value).startswith(f"{bad}: load: not a valid Book JSON: meta.title: Field required")

    unfilled = tiny_book("raw", narrative=2, reference=0)
    unfilled.scenes[0].instruction = None
    f = atomic_write_json(tmp_path / "raw.json", unfilled)
    with pytest.raises(NovelcraftError, match=f"^{f}: compile: book raw: scene 1: missing instruction"):
        run_compile(recipe(tmp_path, books=[str(f)]), counter)


def test_cli_register(tmp_path: Path, counter, capsys) -> None:
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("cli_book", narrative=5)])
    path = tmp_path / "compile.yaml"
    path.write_text(
        yaml.safe_dump({"version": 1, "kind": "compile", "name": "cli", "books": [str(books_dir)],
                        "output_dir": str(tmp_path / "out")}),
        encoding="utf-8",
    )
    assert cli.main(["compile", str(path), "split.validation_fraction=0.2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"data set {tmp_path / 'out' / 'cli'}: 4 train + 1 validation records from 1 book" in out
    assert cli.main(["compile", str(path), "split.validation_fraction=0.2", "--no-progress"]) == 0
    assert "(unchanged, skipped)" in capsys.readouterr().out
    prep = tmp_path / "prep.yaml"
    prep.write_text("version: 1\nkind: prep\nname: p\nbooks: [x]\n", encoding="utf-8")
    assert cli.main(["compile", str(prep)]) == 1
    assert "expected a recipe of kind 'compile', got 'prep'" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_DATASETS, reason="the 'datasets' package is not installed (export format 'hf')")
def test_hf_dataset_round_trip(tmp_path: Path, counter) -> None:
    import datasets

    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("hf_a", narrative=6), tiny_book("hf_b", narrative=3)])
    r = recipe(tmp_path, books=[str(books_dir)], reference_scenes="keep", export={"formats": ["jsonl", "hf"]},
               split={"by": "book", "validation_fraction": 0.5})
    result = run_compile(r, counter)
    dd = datasets.load_from_disk(str(tmp_path / "datasets" / "t" / "hf_dataset"))
    assert set(dd) == {"train", "validation"}
    for split in ("train", "validation"):
        recs = getattr(result, split)
        assert len(dd[split]) == len(recs) > 0
        for row, rec in zip(dd[split], recs):
            assert row["messages"] == [m.model_dump() for m in rec.record.messages]
            assert {k: row[k] for k in rec.meta.model_dump()} == rec.meta.model_dump()
    assert any(dd["train"]["is_reference"]) or any(dd["validation"]["is_reference"])
    # a forced re-run replaces the folder in place
    run_compile(r, counter, force=True)
    assert len(datasets.load_from_disk(str(tmp_path / "datasets" / "t" / "hf_dataset"))["train"]) == len(result.train)


def test_hf_export_without_datasets_is_a_clear_error(tmp_path: Path, counter, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    books_dir = write_run_layout(tmp_path / "runs", [tiny_book("nohf")])
    r = recipe(tmp_path, books=[str(books_dir)], export={"formats": ["jsonl", "hf"]})
    with pytest.raises(NovelcraftError, match="export: export format 'hf' needs the 'datasets' package"):
        run_compile(r, counter)


# --------------------------------------------------------------------------- peer data set


def test_dataset_stats_of_the_peer_sample(counter) -> None:
    rows = read_jsonl(PEER_SAMPLE)
    stats = dataset_stats(rows, counter)
    assert stats.records == 5
    totals = [counter.count(render_chatml(r["messages"])) for r in rows]
    scenes = [counter.count(r["messages"][2]["content"]) for r in rows]
    assert stats.tokens.max == max(totals) and stats.scene.total == sum(scenes)
    assert stats.narrative_context_ratio == round(sum(scenes) / (sum(totals) - sum(scenes)), 3)


@pytest.mark.skipif(not PEER_FINAL.is_file(), reason=f"peer data set not present at {PEER_FINAL}")
def test_peer_final_jsonl_validates_and_measures(counter) -> None:
    issues = validate_file(PEER_FINAL, counter=counter)
    assert not has_errors(issues) and issues == [], "\n".join(i.format() for i in issues)
    stats = dataset_stats(read_jsonl(PEER_FINAL), counter)
    assert stats.records == 53 and stats.tokens.max <= 4096
    assert stats.narrative_context_ratio is not None and stats.narrative_context_ratio > 1


@pytest.mark.slow
def test_two_real_books_with_reference_scenes(tmp_path: Path, alice: Book, counter) -> None:
    iron = fill(prep_book(BOOKS / "iron-heel.epub", PrepRecipe(name="t", books=["x"]), counter))
    assert any(s.is_reference for s in iron.scenes)
    books_dir = write_run_layout(tmp_path / "runs", [alice, iron])
    r = recipe(tmp_path, books=[str(books_dir)], system_prompt={}, reference_scenes="keep",
               split={"by": "book", "validation_fraction": 0.5, "seed": 3})
    result = run_compile(r, counter)
    records = result.train + result.validation
    refs = [x for x in records if x.meta.is_reference]
    iron_refs = [s for s in iron.scenes if s.is_reference]
    assert len(refs) == len(iron_refs) - sum(1 for d in result.stats.dropped if d.is_reference)
    assert [x.meta.progress_percent for x in refs][0] == 0
    assert all(x.meta.tokens <= 4096 for x in records)
    assert not has_errors(validate_paths([tmp_path / "datasets" / "t"], counter=counter))


def test_a_data_set_without_records_is_an_error(tmp_path: Path, counter) -> None:
    book = tiny_book("empty", narrative=3, reference=1)
    book.meta.world_context = None
    f = atomic_write_json(tmp_path / "empty.json", book)
    expected = r"compile: no records: all 4 scenes were dropped \(dropped scenes: 3 missing, 1 reference \(recipe\)\)"
    with pytest.raises(NovelcraftError, match=expected):
        run_compile(recipe(tmp_path, books=[str(f)], on_missing="drop"), counter)
    assert not (tmp_path / "datasets" / "t").exists()
