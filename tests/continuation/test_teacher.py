"""The teacher's gates: empty, tags, copies of the continuation, word bounds, one-sentence guidance."""

from __future__ import annotations

from novelcraft.continuation.chunk import Chunk
from novelcraft.continuation.recipe import GuidanceConfig, TeacherConfig
from novelcraft.continuation.teacher import (
    TeacherGuidance,
    TeacherReasoning,
    copy_share,
    guidance_verdict,
    reasoning_tasks,
    reasoning_verdict,
)
from novelcraft.prompts import load_prompt

TARGET = "The rabbit ran across the lawn and vanished down a large hole under the hedge before she could call out."
CHUNK = Chunk(
    chunk_id="b/c1/k1", book_id="b", chapter_index=1, index=1, context="Alice sat by the river.", target=TARGET,
    context_sentences=1, target_sentences=1, start=0, split_at=24, end=24 + len(TARGET),
)  # fmt: skip
CFG = TeacherConfig(min_words=5, max_words=30)


def _verdict(text: str):
    return reasoning_verdict(TeacherReasoning(reasoning=text), CHUNK, CFG)


def test_reasoning_gate():
    assert _verdict("Alice is bored; something strange should pull her away from the bank now.").kind == "ok"
    assert _verdict("Too short.").kind == "retry"
    assert "tags" in _verdict("<answer>The rabbit ran off and she followed it at once.</answer>").message
    copied = _verdict("I will write: " + TARGET)
    assert copied.kind == "retry" and "copies" in copied.message
    assert _verdict(" ".join(["word"] * 40)).kind == "compress"
    assert copy_share(TARGET, TARGET) == 1.0 and copy_share("nothing alike here at all", TARGET) == 0.0


def test_guidance_gate():
    cfg = GuidanceConfig(max_words=12)
    assert guidance_verdict(TeacherGuidance(guidance="Alice follows the rabbit into the hole."), cfg).kind == "ok"
    two = guidance_verdict(TeacherGuidance(guidance="Alice follows it. She falls."), cfg)
    assert two.kind == "retry" and "2 sentences" in two.message
    assert guidance_verdict(TeacherGuidance(guidance=" ".join(["w"] * 13) + "."), cfg).kind == "compress"


def test_tasks_render_the_packaged_prompt_with_guidance():
    prompt = load_prompt("continuation_reasoning")
    [plain, guided] = reasoning_tasks(
        [CHUNK, CHUNK.model_copy(update={"chunk_id": "b/c1/k2"})], {"b/c1/k2": "She follows it."}, prompt, CFG
    )
    user = plain.messages[1]["content"]
    assert "### Beginning:\nAlice sat by the river." in user and TARGET in user and "5 to 30 words" in user
    assert "### Guidance" not in user and "### Guidance:\nShe follows it." in guided.messages[1]["content"]
    assert plain.schema is TeacherReasoning and plain.key == "b/c1/k1/reasoning"
    assert plain.gate(TeacherReasoning(reasoning="x")).kind == "retry"
