"""Retry, feedback, compress-and-flag and resume logic of run_tasks, with a scripted engine."""

from __future__ import annotations

import json

import pytest

from novelcraft.llm.answers import Verdict
from novelcraft.llm.tasks import Task, run_tasks
from novelcraft.llm.testing import ScriptedEngine
from novelcraft.llm.types import LLMError, LLMResponse
from novelcraft.models import Instruction, SceneBoundaries
from novelcraft.runs import ResultStore
from novelcraft.stats import StageStats

GOOD = {
    "scene_goal": "Avis meets Ernest at dinner.",
    "characters_present": ["Avis", "Ernest"],
    "emotional_beat": "wary fascination",
    "constraints": "first person",
}


def task(key="t", gate=None, compress_attempts=2, schema=Instruction):
    return Task(
        key=key,
        messages=[{"role": "user", "content": f"do {key}"}],
        schema=schema,
        max_tokens=100,
        gate=gate,
        compress_attempts=compress_attempts,
    )


def test_invalid_answer_is_retried_with_feedback_then_succeeds():
    answers = iter(["not json", json.dumps(GOOD)])
    engine = ScriptedEngine(lambda req: next(answers))
    stats = StageStats()
    [out] = run_tasks(engine, [task()], attempts=3, stats=stats)
    assert out.ok and out.attempts == 2 and stats.retries == 1 and stats.calls == 2
    second = engine.requests[1].messages
    assert second[-2] == {"role": "assistant", "content": "not json"}
    assert "rejected" in second[-1]["content"] and "not valid JSON" in second[-1]["content"]


def test_attempts_exhausted_gives_error_outcome():
    engine = ScriptedEngine(lambda req: "{}")
    [out] = run_tasks(engine, [task()], attempts=2)
    assert not out.ok and out.attempts == 2 and "Field required" in out.error


def test_gate_retry_message_is_fed_back():
    answers = iter(['{"scene_starts": [1, 2]}', '{"scene_starts": [0, 2]}'])
    engine = ScriptedEngine(lambda req: next(answers))

    def gate(v):
        return Verdict.ok() if v.scene_starts[0] == 0 else Verdict.retry("the first scene must start at block 0")

    [out] = run_tasks(engine, [task(gate=gate, schema=SceneBoundaries)])
    assert out.value.scene_starts == [0, 2]
    assert "must start at block 0" in engine.requests[1].messages[-1]["content"]


def test_compress_until_within_budget():
    long = {**GOOD, "scene_goal": " ".join(["word"] * 40)}
    answers = iter([json.dumps(long), json.dumps(GOOD)])
    engine = ScriptedEngine(lambda req: next(answers))
    stats = StageStats()
    [out] = run_tasks(engine, [task()], stats=stats)
    assert out.ok and not out.flagged and out.compressions == 1 and stats.compressions == 1
    assert "too long" in engine.requests[1].messages[-1]["content"]


def test_compress_exhausted_keeps_last_answer_flagged():
    long = {**GOOD, "scene_goal": " ".join(["word"] * 40)}
    engine = ScriptedEngine(lambda req: json.dumps(long))
    stats = StageStats()
    [out] = run_tasks(engine, [task(compress_attempts=3)], stats=stats)
    assert out.flagged and out.value.scene_goal.count("word") == 40
    assert stats.calls == 4 and stats.compressions == 3 and stats.flagged == 1


def test_pending_tasks_share_one_batch_per_round():
    answers = {
        "a": iter(["bad", json.dumps(GOOD)]),
        "b": iter([json.dumps(GOOD)]),
        "c": iter(["bad", json.dumps(GOOD)]),
    }
    engine = ScriptedEngine(lambda req: next(answers[req.key]))
    outs = run_tasks(engine, [task("a"), task("b"), task("c")])
    assert all(o.ok for o in outs) and engine.batches == [3, 2]


def test_transport_errors_back_off_then_raise(monkeypatch):
    sleeps = []
    monkeypatch.setattr("novelcraft.llm.scheduler.time.sleep", sleeps.append)
    engine = ScriptedEngine(lambda req: ConnectionError("connection refused"))
    with pytest.raises(LLMError, match="t: no answer after 3 tries: ConnectionError: connection refused"):
        run_tasks(engine, [task()], transport_attempts=3, backoff_s=0.5)
    assert sleeps == [0.5, 1.0]


def test_transport_error_then_recovery(monkeypatch):
    monkeypatch.setattr("novelcraft.llm.scheduler.time.sleep", lambda s: None)
    answers = iter([TimeoutError("read timed out"), json.dumps(GOOD)])
    engine = ScriptedEngine(lambda req: next(answers))
    stats = StageStats()
    [out] = run_tasks(engine, [task()], stats=stats)
    assert out.ok and stats.transport_errors == 1


def test_store_resumes_without_calls_and_without_duplicates(tmp_path):
    store_path = tmp_path / "stage.jsonl"
    engine = ScriptedEngine(lambda req: json.dumps(GOOD))
    first = run_tasks(engine, [task("a"), task("b")], store=ResultStore(store_path), engine_identity="e")
    assert len(engine.requests) == 2
    again = ScriptedEngine(lambda req: pytest.fail("must not be called"))
    stats = StageStats()
    second = run_tasks(again, [task("a"), task("b")], store=ResultStore(store_path), engine_identity="e", stats=stats)
    assert [o.value for o in second] == [o.value for o in first] and stats.reused == 2
    assert all(o.from_store for o in second)
    assert len(store_path.read_text().splitlines()) == 2
    # Another engine identity or prompt is another answer.
    third = ScriptedEngine(lambda req: json.dumps(GOOD))
    run_tasks(third, [task("a")], store=ResultStore(store_path), engine_identity="other")
    assert len(third.requests) == 1


def test_store_ignores_a_torn_last_line(tmp_path):
    store_path = tmp_path / "stage.jsonl"
    run_tasks(
        ScriptedEngine(lambda req: json.dumps(GOOD)), [task("a")], store=ResultStore(store_path), engine_identity="e"
    )
    with store_path.open("a") as f:
        f.write('{"hash": "abc", "value": {"scene_')  # killed mid-write
    store = ResultStore(store_path)
    assert len(store) == 1 and store_path.read_text().endswith("}\n")
    run_tasks(ScriptedEngine(lambda req: json.dumps(GOOD)), [task("b")], store=store, engine_identity="e")
    assert len(ResultStore(store_path)) == 2


def test_response_cut_off_asks_for_brevity():
    answers = iter([LLMResponse(key="t", text='{"scene_goal": "a very long', finish_reason="length"), json.dumps(GOOD)])
    engine = ScriptedEngine(lambda req: next(answers))
    [out] = run_tasks(engine, [task()])
    assert out.ok and "cut off" in engine.requests[1].messages[-1]["content"]


def test_engine_judge_validates_and_raises():
    from novelcraft.llm.tasks import engine_judge

    judge = engine_judge(ScriptedEngine(lambda req: json.dumps(GOOD)))
    assert judge([{"role": "user", "content": "grade"}], Instruction).scene_goal == GOOD["scene_goal"]
    bad = engine_judge(ScriptedEngine(lambda req: "{}"), attempts=2)
    with pytest.raises(LLMError, match="judge: no valid Instruction after 2 answers"):
        bad([{"role": "user", "content": "grade"}], Instruction)


def test_lazy_engine_loads_nothing_until_asked(monkeypatch):
    from novelcraft.llm import LLMConfig
    from novelcraft.llm import factory as engine_mod

    built = []
    monkeypatch.setattr(
        engine_mod, "make_engine", lambda cfg: built.append(cfg) or ScriptedEngine(lambda r: json.dumps(GOOD))
    )
    lazy = engine_mod.LazyEngine(LLMConfig())
    assert lazy.name == "transformers:embedded" and not lazy.loaded and built == []
    [out] = run_tasks(lazy, [task()])
    assert out.ok and lazy.loaded and len(built) == 1
    lazy.close()
    assert not lazy.loaded


def test_a_failed_task_is_stored_so_a_rerun_makes_no_call(tmp_path):
    """An item that stayed invalid is stored with its error: the re-run takes the fallback without the engine."""
    store_path = tmp_path / "s.jsonl"
    engine = ScriptedEngine(lambda req: "not json")
    [first] = run_tasks(engine, [task()], attempts=2, store=ResultStore(store_path))
    assert first.value is None and "not valid JSON" in first.error and len(engine.requests) == 2
    again = ScriptedEngine(lambda req: pytest.fail("the engine was called for a stored failure"))
    stats = StageStats()
    [second] = run_tasks(again, [task()], attempts=2, store=ResultStore(store_path), stats=stats)
    assert second.value is None and second.error == first.error and second.from_store
    assert not again.requests and stats.reused == 1 and stats.failed == 1


def test_an_answer_that_never_passes_its_gate_is_kept_flagged():
    from novelcraft.gates import keep_latest

    engine = ScriptedEngine(lambda req: json.dumps(GOOD))
    t = task(gate=lambda v: Verdict.retry("names John Smith, who never appears"))
    t.keep_best = keep_latest
    stats = StageStats()
    [out] = run_tasks(engine, [t], attempts=3, stats=stats)
    assert out.ok and out.flagged and "John Smith" in out.flag_reason and "after 3 attempts" in out.flag_reason
    assert len(engine.requests) == 3 and stats.flagged == 1
