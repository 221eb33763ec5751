"""``run_continuation`` on real books with a scripted teacher: formats, budget, split, guidance, skip,
byte-identical re-runs, failures, resume after a crash and after SIGKILL; and the data set validates."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from novelcraft.continuation.recipe import ContinuationRecipe
from novelcraft.continuation.run import run_continuation
from novelcraft.errors import NovelcraftError
from novelcraft.llm.testing import ScriptedEngine
from novelcraft.llm.types import LLMError
from novelcraft.reasoning_format import parse_reasoned
from novelcraft.validate import validate_paths

WORDS = re.compile(r"### Beginning:\n(.{0,60})", re.S)


def teacher(req) -> str:
    """A reasoning that names where the chunk begins (so each answer differs) and plans the continuation."""
    user = req.messages[-1]["content"] if len(req.messages) < 3 else req.messages[1]["content"]
    if '"guidance"' in req.messages[1]["content"]:
        return json.dumps({"guidance": "The heroine presses on toward what she wants most."})
    start = WORDS.search(user).group(1).split("\n")[0][:40] if WORDS.search(user) else "?"
    return json.dumps(
        {"reasoning": f"The story stands at '{start}'. The characters want different things, so the next lines "
         "should let the main character act on her wish and show how the world answers her."}
    )  # fmt: skip


def make(tmp_path, paths, **kw) -> ContinuationRecipe:
    data = {
        "name": "t",
        "books": [str(p) for p in paths],
        "output_dir": str(tmp_path / "runs"),
        "chunking": {"context": 12, "target": 4},
        "select": {"max_per_book": 4, "seed": 3},
        "teacher": {"min_words": 10, "max_words": 80, "batch_size": 3},
        "split": {"validation_fraction": 0.5},
    }
    for key, value in kw.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return ContinuationRecipe.model_validate(data)


@pytest.fixture
def two_books(book_of):
    return [book_of("alice-in-wonderland")[1], book_of("iron-heel")[1]]


def test_cra_data_set_from_two_books(tmp_path, two_books, counter):
    recipe = make(tmp_path, two_books)
    engine = ScriptedEngine(teacher)
    result = run_continuation(recipe, counter, engine=engine)
    run = recipe.run_dir
    rows = [json.loads(x) for f in ("train", "validation") for x in (run / f"{f}.jsonl").read_text().splitlines()]
    metas = [json.loads(x) for f in ("train", "validation") for x in (run / f"{f}.meta.jsonl").read_text().splitlines()]
    assert len(rows) == len(metas) == 8 and len(engine.requests) == 8
    assert {m["split"] for m in metas} == {"train", "validation"}
    # split by book: each book entirely on one side
    assert len({(m["book_id"], m["split"]) for m in metas}) == 2
    book = json.loads(two_books[0].read_text())
    chapters = {c["index"]: c["text"] for c in book["chapters"]}
    for row, meta in zip(rows, metas):
        user, assistant = row["messages"]
        assert user["content"].startswith("### System: You are a writer’s assistant.")
        answer = parse_reasoned(assistant["content"]).answer
        if meta["book_id"] == book["meta"]["book_id"]:
            assert chapters[meta["chapter_index"]][meta["source_split"] : meta["source_end"]] == answer
    assert validate_paths([run], counter=counter, continuation_max_tokens=recipe.records.max_tokens) == []
    assert result.stats.stages["reasoning"].calls == 8 and "8 " not in result.summary().splitlines()[0][:5]
    card = (run / "README.md").read_text()
    assert "reasoning-continuation" in card and "scripted" in card


def test_rerun_is_skipped_and_force_is_byte_identical(tmp_path, two_books, counter):
    recipe = make(tmp_path, two_books)
    run_continuation(recipe, counter, engine=ScriptedEngine(teacher))
    files = {f: (recipe.run_dir / f).read_bytes() for f in ("train.jsonl", "validation.meta.jsonl", "README.md")}
    again = ScriptedEngine(teacher)
    assert run_continuation(recipe, counter, engine=again).skipped and again.requests == []
    forced = ScriptedEngine(teacher)
    assert not run_continuation(recipe, counter, engine=forced, force=True).skipped
    assert forced.requests == []  # every answer came from the store
    assert {f: (recipe.run_dir / f).read_bytes() for f in files} == files


def test_chat_format_guidance_and_token_budget(tmp_path, two_books, counter):
    recipe = make(
        tmp_path,
        two_books,
        records={"format": "chat", "max_tokens": 700},
        guidance={"enabled": True, "share": 0.5},
    )
    result = run_continuation(recipe, counter, engine=ScriptedEngine(teacher))
    metas = [
        json.loads(x)
        for f in ("train", "validation")
        for x in (recipe.run_dir / f"{f}.meta.jsonl").read_text().splitlines()
        if x
    ]
    rows = [
        json.loads(x)
        for f in ("train", "validation")
        for x in (recipe.run_dir / f"{f}.jsonl").read_text().splitlines()
        if x
    ]
    assert all(m["tokens"] <= 700 for m in metas)
    assert result.dataset.dropped and all(d.reason == "over_budget" for d in result.dataset.dropped)
    guided = [r for r, m in zip(rows, metas) if m["guided"]]
    assert guided and len(guided) < len(rows)
    for r, m in zip(rows, metas):
        system, user, _ = r["messages"]
        assert system["role"] == "system" and ("<guidance>" in user["content"]) == m["guided"]
        assert user["content"].endswith(f"Write about {m['target_sentences']} sentences.")
    assert validate_paths([recipe.run_dir], counter=counter, continuation_max_tokens=700) == []


def test_bad_answers_are_retried_then_dropped_or_fatal(tmp_path, two_books, counter):
    calls = {"n": 0}

    def copying(req):
        calls["n"] += 1
        if calls["n"] % 2:  # every other answer has tags inside; its retry is fine
            return json.dumps({"reasoning": "<answer>" + "word " * 20 + "</answer>"})
        return teacher(req)

    result = run_continuation(make(tmp_path, two_books), counter, engine=ScriptedEngine(copying))
    assert result.stats.stages["reasoning"].retries > 0 and not result.dataset.dropped
    short = ScriptedEngine(lambda req: json.dumps({"reasoning": "Too short."}))
    with pytest.raises(NovelcraftError, match="no records"):
        run_continuation(make(tmp_path / "b", two_books), counter, engine=short)
    with pytest.raises(NovelcraftError, match=r"no valid reasoning after 3 answers: .*at least 10"):
        run_continuation(make(tmp_path / "c", two_books, teacher={"on_failure": "error"}), counter, engine=short)


def test_a_crash_mid_run_resumes_without_repeating_or_losing_answers(tmp_path, two_books, counter):
    recipe = make(tmp_path, two_books)
    seen = {"n": 0}

    def dies(req):
        seen["n"] += 1
        if seen["n"] > 4:
            return RuntimeError("server went away")
        return teacher(req)

    with pytest.raises(LLMError, match="server went away"):
        run_continuation(
            make(tmp_path, two_books, teacher={"llm": {"retry": {"attempts": 1, "backoff_s": 0, "max_backoff_s": 0}}}),
            counter,
            engine=ScriptedEngine(dies, name="scripted"),
        )
    store = recipe.run_dir / "llm" / "reasoning.jsonl"
    # the first batch of 3 was stored, and the answer the second batch got before the server died
    assert len(store.read_text().splitlines()) == 4
    assert not (recipe.run_dir / "train.jsonl").exists()
    rest = ScriptedEngine(teacher, name="scripted")
    run_continuation(recipe, counter, engine=rest)
    assert len(rest.requests) == 4  # only what was missing
    keys = [json.loads(x)["key"] for x in store.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 8


RUNNER = """
import json, sys, time
sys.path.insert(0, {tests!r})
from test_run import teacher
from novelcraft.continuation.recipe import ContinuationRecipe
from novelcraft.continuation.run import run_continuation
from novelcraft.llm.testing import ScriptedEngine

recipe = ContinuationRecipe.model_validate(json.loads({recipe!r}))
delay = float(sys.argv[1])

def slow(req):
    time.sleep(delay)
    return teacher(req)

run_continuation(recipe, engine=ScriptedEngine(slow))
print("done")
"""


def test_sigkill_mid_run_then_resume(tmp_path, two_books):
    """A real process killed with SIGKILL between batches resumes with no duplicate and no lost record."""

    def script(name: str) -> Path:
        data = make(tmp_path / name, two_books).model_dump(mode="json")
        path = tmp_path / f"{name}.py"
        path.write_text(RUNNER.format(tests=str(Path(__file__).parent), recipe=json.dumps(data)))
        return path

    clean = subprocess.run([sys.executable, script("clean"), "0"], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    killed = script("killed")
    proc = subprocess.Popen([sys.executable, killed, "0.4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = tmp_path / "killed" / "runs" / "t" / "llm" / "reasoning.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (store.is_file() and store.read_text().count("\n") >= 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 3 <= store.read_text().count("\n") < 8, "killed too late (or too early) to test a resume"
    assert not (store.parent.parent / "train.jsonl").exists()
    done = subprocess.run([sys.executable, killed, "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("train.jsonl", "validation.jsonl", "train.meta.jsonl", "validation.meta.jsonl", "README.md"):
        a = (tmp_path / "killed" / "runs" / "t" / name).read_bytes()
        b = (tmp_path / "clean" / "runs" / "t" / name).read_bytes()
        assert a == b.replace(str(tmp_path / "clean").encode(), str(tmp_path / "killed").encode()), name
    keys = [json.loads(x)["key"] for x in store.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 8
