"""``novelcraft.llm.scheduler``: tasks in flight, in rounds and in continuous streams, and flows fed by their outcomes."""

from __future__ import annotations

import json

import pytest

from novelcraft.llm.scheduler import TaskScheduler, run_flows
from novelcraft.llm.tasks import Task, run_tasks
from novelcraft.llm.testing import ScriptedEngine, StreamingScriptedEngine
from novelcraft.models import Instruction
from novelcraft.runs import ResultStore
from novelcraft.stats import StageStats


def answer(goal: str) -> str:
    return json.dumps(
        {"scene_goal": goal, "characters_present": ["Avis"], "emotional_beat": "calm", "constraints": "none"}
    )


def task(key: str) -> Task:
    return Task(key=key, messages=[{"role": "user", "content": f"do {key}"}], schema=Instruction, max_tokens=100)


def chain(name: str, steps: int, seen: list[str]):
    """A flow of ``steps`` dependent tasks; each step's prompt names the answer before it."""
    previous = "start"
    for i in range(steps):
        [out] = yield [
            Task(
                key=f"{name}/{i}",
                messages=[{"role": "user", "content": f"{name} step {i} after {previous}"}],
                schema=Instruction,
                max_tokens=100,
            )
        ]
        previous = out.value.scene_goal
        seen.append(previous)


def test_flows_share_rounds_and_a_retry_holds_no_other_flow_back():
    rejected: set[str] = set()

    def reply(req):
        if req.key == "a/0" and req.key not in rejected:  # a's first answer is rejected once
            rejected.add(req.key)
            return "not json"
        return answer(f"goal of {req.key}")

    engine = ScriptedEngine(reply)
    seen: list[str] = []
    stats = StageStats()
    run_flows(TaskScheduler(engine, stats=stats), [chain("a", 2, seen), chain("b", 3, seen)])
    # round 1: both first steps; round 2: a's retry beside b's second step; then a/1 with b/2
    assert engine.batch_keys() == [["a/0", "b/0"], ["a/0", "b/1"], ["a/1", "b/2"]]
    assert stats.rounds == 3 and stats.calls == 6 and stats.retries == 1
    assert "b step 1 after goal of b/0" in engine.requests[3].messages[0]["content"]
    assert sorted(seen) == sorted(["goal of a/0", "goal of a/1", "goal of b/0", "goal of b/1", "goal of b/2"])


def test_a_flow_settled_from_the_store_moves_on_without_a_round(tmp_path):
    store = ResultStore(tmp_path / "s.jsonl")
    engine = ScriptedEngine(lambda req: answer(f"goal of {req.key}"))
    run_flows(TaskScheduler(engine, store=store), [chain("a", 3, [])])
    assert engine.batches == [1, 1, 1]
    again = ScriptedEngine(lambda req: pytest.fail("a stored answer went to the engine"))
    seen: list[str] = []
    stats = StageStats()
    run_flows(TaskScheduler(again, store=ResultStore(tmp_path / "s.jsonl"), stats=stats), [chain("a", 3, seen)])
    assert again.batches == [] and stats.reused == 3 and seen == ["goal of a/0", "goal of a/1", "goal of a/2"]


def test_returned_flows_start_when_their_parent_ends():
    order: list[str] = []

    def parent():
        [out] = yield [task("p")]
        order.append("parent done")
        return [chain("c1", 1, order), chain("c2", 2, order)]

    engine = ScriptedEngine(lambda req: answer(f"goal of {req.key}"))
    run_flows(TaskScheduler(engine), [parent(), chain("x", 2, order)])
    # the parent resumes before x (it started first) and its children start at once, so they come first
    assert engine.batch_keys() == [["p", "x/0"], ["c1/0", "c2/0", "x/1"], ["c2/1"]]
    assert order[0] == "parent done"


def test_an_error_in_a_flow_stops_the_run_after_storing_what_was_settled(tmp_path):
    def broken():
        yield [task("k")]
        raise RuntimeError("flow bug")

    store = ResultStore(tmp_path / "s.jsonl")
    engine = ScriptedEngine(lambda req: answer("fine"))
    with pytest.raises(RuntimeError, match="flow bug"):
        run_flows(TaskScheduler(engine, store=store), [broken(), chain("y", 2, [])])
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2  # k and y/0 were stored


def test_an_empty_step_needs_no_round():
    def flow():
        got = yield []
        assert got == []
        yield [task("only")]

    engine = ScriptedEngine(lambda req: answer("x"))
    run_flows(TaskScheduler(engine), [flow()])
    assert engine.batches == [1]


# -- continuous batching (an engine with open_stream) -------------------------------------------------------


def test_a_short_chain_moves_on_while_a_long_answer_is_still_decoding():
    def reply(req):
        # the simulated decode time is the answer's words: slow's 40 outlast fast's three answers of 10
        return answer(" ".join(["slowly"] * 30) if req.key.startswith("slow") else f"{req.key} {req.key}")

    engine = StreamingScriptedEngine(reply)
    seen: list[str] = []
    stats = StageStats()
    run_flows(TaskScheduler(engine, stats=stats), [chain("slow", 1, seen), chain("fast", 3, seen)])
    # fast's steps are sent one by one as their answers come, none waiting for slow's long answer
    assert engine.added == [["slow/0", "fast/0"], ["fast/1"], ["fast/2"]]
    assert seen[:3] == ["fast/0 fast/0", "fast/1 fast/1", "fast/2 fast/2"] and seen[3].startswith("slowly")
    assert stats.calls == 4 and stats.rounds == 3


def test_a_rejected_answer_is_sent_again_at_once_beside_the_others():
    rejected: set[str] = set()

    def reply(req):
        if req.key == "a/0" and req.key not in rejected:
            rejected.add(req.key)
            return "not json"  # two words: it comes back first
        return answer(" ".join([req.key] * 5))

    engine = StreamingScriptedEngine(reply)
    stats = StageStats()
    run_flows(TaskScheduler(engine, stats=stats), [chain("a", 2, []), chain("b", 1, [])])
    assert engine.added == [["a/0", "b/0"], ["a/0"], ["a/1"]]
    assert "not json" in engine.requests[2].messages[1]["content"]  # the retry carries the rejected answer
    assert stats.retries == 1 and stats.calls == 4


def test_chunk_size_caps_the_requests_in_flight():
    engine = StreamingScriptedEngine(lambda req: answer(" ".join(["w"] * (1 + int(req.key[1:])))))
    outs = run_tasks(engine, [task(f"t{i}") for i in range(5)], chunk_size=2)
    assert [o.key for o in outs] == [f"t{i}" for i in range(5)] and all(o.ok for o in outs)
    # two in flight at most: each answer that comes back lets the next task in
    assert engine.added == [["t0", "t1"], ["t2"], ["t3"], ["t4"]]


def test_transport_errors_are_retried_in_the_stream_and_answers_stored_as_they_come(tmp_path):
    failures = {"x": 1}

    def reply(req):
        if failures.get(req.key):
            failures[req.key] -= 1
            return ConnectionError("reset")
        return answer(req.key)

    store = ResultStore(tmp_path / "s.jsonl")
    stats = StageStats()
    engine = StreamingScriptedEngine(reply)
    outs = run_tasks(engine, [task("x"), task("y")], store=store, stats=stats, backoff_s=0.0)
    assert all(o.ok for o in outs) and stats.transport_errors == 1 and stats.calls == 3
    assert engine.added == [["x", "y"], ["x"]]
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2


def test_a_flow_error_abandons_the_requests_in_flight(tmp_path):
    def broken():
        yield [task("k")]
        raise RuntimeError("flow bug")

    engine = StreamingScriptedEngine(lambda req: answer(" ".join([req.key] * (1 if req.key == "k" else 40))))
    scheduler = TaskScheduler(engine, store=ResultStore(tmp_path / "s.jsonl"))
    with pytest.raises(RuntimeError, match="flow bug"):
        run_flows(scheduler, [broken(), chain("y", 2, [])])
    # k was answered and stored; y/0 was still decoding: abandoned, not stored, pending for a later run
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 1
    assert scheduler.pending == 1 and not scheduler.continuous  # the stream is closed
