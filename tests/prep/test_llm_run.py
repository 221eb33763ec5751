"""``novelcraft.prep.llm_run``: stages 4-7 scheduled over books with a scripted engine on real books:
lockstep batches, failures, kill and resume."""

from __future__ import annotations

import json
import re

import pytest

from novelcraft.errors import NovelcraftError
from novelcraft.llm.testing import ScriptedEngine, StreamingScriptedEngine
from novelcraft.models import Book
from novelcraft.prep.book import prep_book
from novelcraft.prep.llm_run import run_llm_stages
from novelcraft.prep.recipe import PrepRecipe
from novelcraft.prep.run import run_prep
from novelcraft.prep.stage_files import SummariesFile
from novelcraft.validate import validate_file


def answer(req) -> str:
    schema = req.schema.__name__
    user = req.messages[1]["content"] if len(req.messages) > 1 else ""
    if schema == "WorldContext":
        return json.dumps(
            {
                k: f"{k}: Alice follows the White Rabbit down the hole into a strange world"
                for k in [
                    "tone_style",
                    "world_rules",
                    "protagonist_conditions",
                    "factions",
                    "locations",
                    "narrative_engine",
                ]
            }
        )
    if schema == "SceneBoundaries":
        n = int(re.search(r"split into (\d+) numbered blocks", user).group(1))
        return json.dumps({"scene_starts": list(range(0, n, 2))})
    if schema == "RunningSummary":
        sid = req.key.rsplit("scene", 1)[1]
        return json.dumps(
            {
                "scene_end_state": f"state after scene {sid}",
                "emotional_beat": "curiosity",
                "immediate_tension": "what next",
                "global_events": f"events up to scene {sid}",
                "unresolved_threads": "the white rabbit",
                "world_state": "odd",
                "active_characters": "Alice",
                "global_shift": "deeper in",
            }
        )
    if schema == "SceneDigest":
        sid = req.key.rsplit("scene", 1)[1]
        return json.dumps(
            {
                "scene_end_state": f"state after scene {sid}",
                "emotional_beat": "curiosity",
                "immediate_tension": "what next",
                "scene_events": "Alice follows the White Rabbit",
            }
        )
    if schema == "GlobalUpdate":
        sid = req.key.rsplit("scene", 1)[1]
        return json.dumps(
            {
                "global_events": f"events up to scene {sid}",
                "unresolved_threads": "the white rabbit",
                "world_state": "odd",
                "active_characters": "Alice",
                "global_shift": "deeper in",
            }
        )
    if schema == "Instruction":
        return json.dumps(
            {
                "scene_goal": f"Write scene {req.key.rsplit('scene', 1)[1]}.",
                "characters_present": ["Alice"],
                "emotional_beat": "wonder",
                "constraints": "light tone",
            }
        )
    raise AssertionError(schema)


@pytest.fixture(scope="module")
def alice(counter, books_dir) -> Book:
    recipe = PrepRecipe(name="t", books=["x"], llm={}, segmentation={"method": "llm"})
    book = prep_book(books_dir / "alice-in-wonderland.epub", recipe, counter)
    book.chapters = book.chapters[:2]
    book.meta.total_chapters = 2
    book.meta.word_count = sum(c.word_count for c in book.chapters)
    return book


def llm_recipe(tmp_path, **kw) -> PrepRecipe:
    data = {"name": "t", "books": ["x"], "output_dir": str(tmp_path), "llm": {}, "segmentation": {"method": "llm"}}
    data.update(kw)
    return PrepRecipe.model_validate(data)


def test_all_stages_with_scripted_engine(tmp_path, counter, alice):
    recipe = llm_recipe(tmp_path)
    engine = ScriptedEngine(answer)
    out = run_llm_stages([(alice, tmp_path / "alice")], recipe, engine, counter, tmp_path, progress=False)
    book = out.books[0]
    narrative = [s for s in book.scenes if not s.is_reference]
    assert book.meta.world_context.startswith("# Novel World Context")
    assert narrative and all(s.running_summary and s.instruction for s in book.scenes)
    # Scenes tile each chapter: every block exactly once, in order, and within the scene budget.
    for ch in book.chapters:
        got = [(s.block_start, s.block_end) for s in narrative if s.chapter_index == ch.index]
        assert got[0][0] == 0 and got[-1][1] == len(ch.blocks) - 1
        assert all(b[0] == a[1] + 1 for a, b in zip(got, got[1:]))
    assert max(s.tokens for s in narrative) <= recipe.budgets.scene.hard_max
    assert [s.scene_id for s in book.scenes] == list(range(1, len(book.scenes) + 1))
    # The summary prompt of scene n holds summary n-1 with its NOVEL PROGRESS.
    prompts = [r for r in engine.requests if r.schema.__name__ == "RunningSummary" and "/narrative/" in r.key]
    assert "first scene of the novel" in prompts[0].messages[1]["content"]
    assert (
        "NOVEL PROGRESS: " in prompts[1].messages[1]["content"]
        and "state after scene 1" in prompts[1].messages[1]["content"]
    )
    # Shared prefix first: system, then the world context at the start of the user turn.
    assert prompts[1].messages[1]["content"].startswith("<world_context>\n# Novel World Context")
    # Outputs are schema-valid.
    for name in ("book.json", "04_world_context.json", "05_scenes.json", "06_summaries.json", "07_instructions.json"):
        assert (tmp_path / "alice" / name).is_file()
    assert [i for i in validate_file(tmp_path / "alice" / "book.json") if i.severity == "error"] == []
    assert out.stats["segmentation"].calls == len(alice.chapters)
    assert out.stats["instructions"].calls == len(book.scenes)


def test_lockstep_batches_across_books(tmp_path, counter, alice):
    other = alice.model_copy(deep=True)
    other.meta.book_id = "other_book"
    other.chapters = other.chapters[:1]
    other.meta.total_chapters = 1
    engine = ScriptedEngine(answer)
    run_llm_stages(
        [(alice, tmp_path / "a"), (other, tmp_path / "b")],
        llm_recipe(tmp_path),
        engine,
        counter,
        tmp_path,
        progress=False,
    )
    kinds = [r.schema.__name__ for r in engine.requests]
    # both books' world contexts and all their chapters' boundaries in the first call (neither needs the other)
    first = kinds[: engine.batches[0]]
    assert first == ["WorldContext"] + ["SceneBoundaries"] * len(alice.chapters) + ["WorldContext", "SceneBoundaries"]
    # then step n of every live chain (one narrative chain per book) in one batch: each scene's summary and
    # its instruction side by side (their prompts share the prefix up to the scene)
    steps = engine.batches[1:]
    assert steps[0] == 4 and sum(steps) == kinds.count("RunningSummary") + kinds.count("Instruction")
    assert kinds.count("RunningSummary") == kinds.count("Instruction")
    first_step = engine.requests[engine.batches[0] : sum(engine.batches[:2])]
    assert [r.schema.__name__ for r in first_step] == ["RunningSummary", "Instruction"] * 2
    summary, instruction = first_step[0], first_step[1]
    assert summary.messages[0] == instruction.messages[0]  # the same system turn
    cut = summary.messages[1]["content"].index("</scene>") + len("</scene>")
    assert instruction.messages[1]["content"][:cut] == summary.messages[1]["content"][:cut]


def test_continuous_batching_writes_the_same_files_as_rounds(tmp_path, counter, alice):
    other = alice.model_copy(deep=True)
    other.meta.book_id = "other_book"
    other.chapters = other.chapters[:1]
    other.meta.total_chapters = 1
    rounds, stream = ScriptedEngine(answer), StreamingScriptedEngine(answer)
    for name, engine in (("r", rounds), ("s", stream)):
        books = [(alice, tmp_path / name / "a"), (other, tmp_path / name / "b")]
        run_llm_stages(books, llm_recipe(tmp_path / name), engine, counter, tmp_path / name, progress=False)
    assert stream.added and not stream.batches  # the stream was used, no generate() call
    assert sorted(r.key for r in stream.requests) == sorted(r.key for r in rounds.requests)
    for book in ("a", "b"):
        for name in ("04_world_context.json", "05_scenes.json", "06_summaries.json", "07_instructions.json"):
            assert (tmp_path / "s" / book / name).read_text() == (tmp_path / "r" / book / name).read_text(), name


def test_a_books_retries_share_calls_with_the_other_books_next_steps(tmp_path, counter, alice):
    other = alice.model_copy(deep=True)
    other.meta.book_id = "other_book"
    rejected: set[str] = set()

    def picky(req):
        # the first answer to each of alice's summaries is rejected: every alice step takes two rounds
        if (
            req.schema.__name__ == "RunningSummary"
            and req.key.startswith(alice.meta.book_id)
            and req.key not in rejected
        ):
            rejected.add(req.key)
            return "{"
        if req.key.startswith("other_book"):  # prompts unlike alice's: no answer of one serves the other's
            return answer(req).replace("strange world", "very strange world")
        return answer(req)

    engine = ScriptedEngine(picky)
    out = run_llm_stages(
        [(alice, tmp_path / "a"), (other, tmp_path / "b")],
        llm_recipe(tmp_path),
        engine,
        counter,
        tmp_path,
        progress=False,
    )
    calls = engine.batch_keys()
    # the other book does not wait for alice's retries: its second summary goes with alice's first retry
    first = f"{alice.meta.book_id}/summary/narrative/scene1"
    retry_call = next(c for c in calls if first in c and "other_book/summary/narrative/scene1" not in c)
    assert "other_book/summary/narrative/scene2" in retry_call
    scenes = len(out.books[0].scenes)
    # alice's chain takes two rounds per scene; the other book's chain runs alongside it
    assert len(engine.batches) == 1 + 2 * scenes
    assert out.stats["summaries"].retries == scenes
    assert out.books[0].scenes[-1].running_summary == out.books[1].scenes[-1].running_summary


def test_invalid_boundaries_error_names_book_stage_and_item(tmp_path, counter, alice):
    def bad(req):
        return '{"scene_starts": [3, 1]}' if req.schema.__name__ == "SceneBoundaries" else answer(req)

    with pytest.raises(
        NovelcraftError,
        match=r"segmentation: .*alice.*/segmentation/chapter1/block0: no valid answer after 3 attempts: the first scene must start at block 0",
    ):
        run_llm_stages(
            [(alice, tmp_path / "a")], llm_recipe(tmp_path), ScriptedEngine(bad), counter, tmp_path, progress=False
        )


def test_on_failure_flag_falls_back_to_size_cuts(tmp_path, counter, alice):
    def bad(req):
        return '{"scene_starts": [3, 1]}' if req.schema.__name__ == "SceneBoundaries" else answer(req)

    recipe = llm_recipe(tmp_path, stages={"on_failure": "flag"})
    out = run_llm_stages([(alice, tmp_path / "a")], recipe, ScriptedEngine(bad), counter, tmp_path, progress=False)
    flags = out.flags[alice.meta.book_id]
    assert {f["stage"] for f in flags} == {"segmentation"} and len(flags) == len(alice.chapters)
    assert json.loads((tmp_path / "a" / "llm_flags.json").read_text()) == flags
    assert all(s.instruction for s in out.books[0].scenes)


def test_kill_and_resume_gives_the_same_files_without_duplicates(tmp_path, counter, alice):
    clean_dir = tmp_path / "clean"
    run_llm_stages(
        [(alice, clean_dir / "alice")],
        llm_recipe(clean_dir),
        ScriptedEngine(answer),
        counter,
        clean_dir,
        progress=False,
    )

    run_dir = tmp_path / "killed"
    calls = {"n": 0}

    def dies(req):
        calls["n"] += 1
        if req.schema.__name__ == "RunningSummary" and req.key.endswith("scene2"):
            raise KeyboardInterrupt
        return answer(req)

    with pytest.raises(KeyboardInterrupt):
        run_llm_stages(
            [(alice, run_dir / "alice")], llm_recipe(run_dir), ScriptedEngine(dies), counter, run_dir, progress=False
        )
    assert not (run_dir / "alice" / "book.json").exists()
    resumed = ScriptedEngine(answer)
    run_llm_stages([(alice, run_dir / "alice")], llm_recipe(run_dir), resumed, counter, run_dir, progress=False)
    # Finished world context, segmentation and summaries 1-2 were not asked again.
    kinds = [r.schema.__name__ for r in resumed.requests]
    assert "WorldContext" not in kinds and "SceneBoundaries" not in kinds
    assert not any(r.key.endswith("/scene1") for r in resumed.requests if r.schema.__name__ == "RunningSummary")
    for name in ("book.json", "05_scenes.json", "06_summaries.json", "07_instructions.json"):
        assert (run_dir / "alice" / name).read_bytes() == (clean_dir / "alice" / name).read_bytes(), name
    for store in (run_dir / "llm").glob("*.jsonl"):
        keys = [json.loads(line)["key"] for line in store.read_text().splitlines()]
        assert len(keys) == len(set(keys)), store.name


def test_run_prep_with_llm_stages(tmp_path, counter, books_dir):
    recipe = PrepRecipe.model_validate(
        {
            "name": "llm",
            "books": [str(books_dir / "alice-in-wonderland.epub")],
            "output_dir": str(tmp_path),
            "llm": {"debug_log": True},
            "segmentation": {"method": "llm"},
        }
    )
    result = run_prep(recipe, counter=counter, engine=ScriptedEngine(answer), progress=False)
    assert not result.failed and result.stats.stages["summaries"].calls == result.stats.items[0].counts["scenes"]
    stats = json.loads((tmp_path / "llm" / "stats.json").read_text())
    assert stats["engine"] == "transformers:embedded" and stats["stages"]["instructions"]["calls"] > 0
    assert (tmp_path / "llm" / "llm_debug.jsonl").is_file()
    book_json = tmp_path / "llm" / "books" / "alice-in-wonderland" / "book.json"
    assert [i for i in validate_file(book_json) if i.severity == "error"] == []
    again = run_prep(
        recipe,
        counter=counter,
        engine=ScriptedEngine(lambda r: pytest.fail("resumed run must not call")),
        progress=False,
    )
    assert again.stats.stages["instructions"].reused == result.stats.stages["instructions"].calls


RUNNER = """
import json, sys, time
sys.path.insert(0, {tests!r})
from test_llm_run import answer
from novelcraft.llm.testing import ScriptedEngine
from novelcraft.prep.run import run_prep
from novelcraft.prep.recipe import PrepRecipe

recipe = PrepRecipe.model_validate(json.loads({recipe!r}))
delay = float(sys.argv[1])

def slow(req):
    time.sleep(delay)
    return answer(req)

run_prep(recipe, engine=ScriptedEngine(slow), progress=False)
print("done")
"""


def test_sigkill_mid_run_then_resume(tmp_path, books_dir):
    """A real process killed with SIGKILL mid-stage resumes without losing or duplicating answers."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    def recipe(out):
        return json.dumps(
            {
                "name": "k",
                "books": [str(books_dir / "alice-in-wonderland.epub")],
                "output_dir": str(out),
                "max_chapters": 3,
                "llm": {},
                "segmentation": {"method": "llm"},
                "stages": {"chunk_size": 1},
            }
        )

    tests_dir = str(Path(__file__).resolve().parent)
    script = tmp_path / "run.py"
    script.write_text(RUNNER.format(tests=tests_dir, recipe=recipe(tmp_path / "killed")))
    reference = tmp_path / "ref.py"
    reference.write_text(RUNNER.format(tests=tests_dir, recipe=recipe(tmp_path / "clean")))
    assert (
        subprocess.run([sys.executable, str(reference), "0"], capture_output=True, text=True, timeout=300).returncode
        == 0
    )

    proc = subprocess.Popen([sys.executable, str(script), "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = tmp_path / "killed" / "k" / "llm" / "summaries.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (store.is_file() and store.read_text().count("\n") >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert store.is_file(), "the run was killed before any summary was stored"
    book = tmp_path / "killed" / "k" / "books" / "alice-in-wonderland" / "book.json"
    assert not book.exists()
    done = subprocess.run([sys.executable, str(script), "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    clean = tmp_path / "clean" / "k" / "books" / "alice-in-wonderland" / "book.json"
    assert book.read_bytes() == clean.read_bytes()
    for f in (tmp_path / "killed" / "k" / "llm").glob("*.jsonl"):
        keys = [json.loads(line)["key"] for line in f.read_text().splitlines() if line.strip()]
        assert len(keys) == len(set(keys)), f.name


def test_rerun_after_fallbacks_makes_no_engine_call(tmp_path, counter, alice):
    """Segmentation fell back to size cuts and an instruction never passed its gate: a re-run of the finished
    run answers everything from the store (fallbacks and flags included) and writes the same files."""

    def weak(req):
        if req.schema.__name__ == "SceneBoundaries":
            return '{"scene_starts": [3, 1]}'
        if req.schema.__name__ == "Instruction":
            return json.dumps(
                {
                    "scene_goal": "Write it.",
                    "characters_present": ["John Smith"],
                    "emotional_beat": "x",
                    "constraints": "none",
                }
            )
        return answer(req)

    recipe = llm_recipe(tmp_path, stages={"on_failure": "flag"})
    first = run_llm_stages([(alice, tmp_path / "a")], recipe, ScriptedEngine(weak), counter, tmp_path, progress=False)
    flags = first.flags[alice.meta.book_id]
    assert {f["stage"] for f in flags} == {"segmentation", "instructions"}
    assert all("John Smith" in f["reason"] for f in flags if f["stage"] == "instructions")
    book = first.books[0]
    narrative = [s for s in book.scenes if not s.is_reference]
    assert all(any(f.startswith("segmentation:") for f in s.flags) for s in narrative)
    assert all(any(f.startswith("instructions:") for f in s.flags) for s in book.scenes)
    files = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}

    silent = ScriptedEngine(lambda req: pytest.fail(f"engine called again for {req.key}"))
    again = run_llm_stages([(alice, tmp_path / "a")], recipe, silent, counter, tmp_path, progress=False)
    assert not silent.requests
    assert again.flags == first.flags
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == files
    assert again.stats["segmentation"].reused == len(alice.chapters) and again.stats["segmentation"].calls == 0


def test_answers_kept_over_their_word_budget_are_written_flagged_and_validate(tmp_path, counter, alice):
    """A world context, a summary and an instruction that stay over their word budgets after compression are
    kept and flagged (on_failure: flag): their stage files are written, reload, and `validate` reports them
    as warnings."""

    def wordy(req):
        data = json.loads(answer(req))
        if req.schema.__name__ == "WorldContext":
            data["narrative_engine"] = " ".join(["Alice follows the white rabbit"] * 11)  # 55 words, budget 50
        if req.schema.__name__ == "RunningSummary":
            data["global_events"] = " ".join(["Alice ran on"] * 24)  # 72 words, budget 60
        if req.schema.__name__ == "Instruction":
            data["constraints"] = " ".join(["go on"] * 38)  # 76 words: the whole instruction over its 80
        return json.dumps(data)

    recipe = llm_recipe(tmp_path, stages={"on_failure": "flag"})
    out = run_llm_stages([(alice, tmp_path / "a")], recipe, ScriptedEngine(wordy), counter, tmp_path, progress=False)
    flags = out.flags[alice.meta.book_id]
    assert {"world_context", "summaries", "instructions"} <= {f["stage"] for f in flags}
    assert any("words, budget is" in f["reason"] for f in flags if f["stage"] == "summaries")
    world = json.loads((tmp_path / "a" / "04_world_context.json").read_text())
    assert world["flagged"] and "narrative_engine: 55 words, budget is 50" in world["flag_reason"]
    summaries = SummariesFile.model_validate_json(
        (tmp_path / "a" / "06_summaries.json").read_text(), context={"word_budgets": False}
    )
    assert len(summaries.root) == len(out.books[0].scenes)
    for name in ("04_world_context.json", "06_summaries.json", "07_instructions.json"):
        issues = validate_file(tmp_path / "a" / name)
        assert issues and all(i.severity == "warning" for i in issues), (name, issues)


def test_compile_keeps_or_drops_flagged_records(tmp_path, counter, alice):
    from novelcraft.dataset import compile_books
    from novelcraft.dataset.recipe import CompileRecipe

    def weak(req):
        if req.schema.__name__ == "Instruction" and req.key.endswith("scene2"):
            return json.dumps(
                {
                    "scene_goal": "Write it.",
                    "characters_present": ["John Smith"],
                    "emotional_beat": "x",
                    "constraints": "none",
                }
            )
        return answer(req)

    recipe = llm_recipe(tmp_path, stages={"on_failure": "flag"})
    out = run_llm_stages([(alice, tmp_path / "a")], recipe, ScriptedEngine(weak), counter, tmp_path, progress=False)
    book = out.books[0]
    keep = compile_books([book], CompileRecipe(name="c", books=["x"], split={"validation_fraction": 0}), counter)
    flagged = [r.meta for r in keep.train if r.meta.flags]
    assert [m.scene_id for m in flagged] == [2] and flagged[0].flags[0].startswith("instructions: ")
    assert keep.stats.flagged == {"instructions": 1} and "flagged records kept: 1" in keep.summary()
    drop = compile_books(
        [book], CompileRecipe(name="c", books=["x"], flagged="drop", split={"validation_fraction": 0}), counter
    )
    assert 2 not in [r.meta.scene_id for r in drop.train] and len(drop.train) == len(keep.train) - 1
    assert [d.reason for d in drop.stats.dropped] == ["flagged"]


def test_digest_mode_batches_every_digest_then_chains_the_global_state(tmp_path, counter, alice):
    recipe = llm_recipe(tmp_path, stages={"summaries": {"mode": "digest"}})
    engine = ScriptedEngine(answer)
    out = run_llm_stages([(alice, tmp_path / "a")], recipe, engine, counter, tmp_path, progress=False)
    book = out.books[0]
    scenes = [s for s in book.scenes if not s.is_reference]
    kinds = [r.schema.__name__ for r in engine.requests]
    assert kinds.count("SceneDigest") == len(scenes) and kinds.count("GlobalUpdate") == len(scenes)
    assert "RunningSummary" not in kinds and kinds.count("Instruction") == len(book.scenes)
    # one round holds every digest, each beside its scene's instruction (the shared prefix), before any chain step
    digest_round = engine.requests[engine.batches[0] : sum(engine.batches[:2])]
    assert [r.schema.__name__ for r in digest_round] == ["SceneDigest", "Instruction"] * len(scenes)
    assert all(b == 1 for b in engine.batches[2:])  # then the chain: one global update per step (one book)
    # the running summary joins the digest's local fields with the global state; the chain sees summary n-1
    assert all(s.running_summary and "state after scene" in s.running_summary for s in scenes)
    second = [r for r in engine.requests if r.schema.__name__ == "GlobalUpdate"][1]
    assert "events up to scene 1" in second.messages[1]["content"] and "<scene_digest>" in second.messages[1]["content"]
    assert "<scene>" not in second.messages[1]["content"]  # the chain runs on the short digests
