"""The reasoning-continuation prompt contract: the CRA texts byte for byte, the tags, lenient parsing."""

from __future__ import annotations

import pytest

from novelcraft.reasoning_format import (
    ContinuationRecord,
    continuation_messages,
    parse_reasoned,
    prompt_parts,
    render_reasoned,
    tag_problems,
    user_turn,
)

CRA_USER = (
    "### System: You are a writer’s assistant.\n\n### Task: Understand how the story flows, what motivations the "
    "characters have and how they will interact with each other and the world as a step by step thought process "
    "before continuing the story.\n\n### Context:\nShe opened the door.\n"
)


def test_cra_user_turn_is_the_published_text():
    assert user_turn("cra", "  She opened the door.\n") == CRA_USER
    guided = user_turn("cra", "She opened the door.", guidance="She finds the garden.")
    assert guided.startswith("### Task: Understand how the story flows") and "### System" not in guided
    assert "### Guidance: She finds the garden.\n\n### Context:\nShe opened the door.\n" in guided


def test_cra_record_has_no_system_turn_and_tags_without_space():
    msgs = continuation_messages("cra", "She opened the door.", reasoning=" R. ", answer=" A. ")
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[1].content == "<reasoning>R.</reasoning><answer>A.</answer>"
    rec = ContinuationRecord(messages=msgs)
    assert rec.format == "cra" and tag_problems(rec.assistant) == []


def test_chat_record_has_system_guidance_and_length_note():
    msgs = continuation_messages(
        "chat", "She opened the door.", guidance="She finds it.", length="3 sentences", reasoning="R", answer="A"
    )
    assert [m.role for m in msgs] == ["system", "user", "assistant"]
    assert "<guidance>\nShe finds it.\n</guidance>" in msgs[1].content
    assert "<context>\nShe opened the door.\n</context>" in msgs[1].content
    assert msgs[1].content.endswith("Write about 3 sentences.")
    assert msgs[2].content == "<reasoning>\nR\n</reasoning>\n<answer>\nA\n</answer>"
    assert parse_reasoned(msgs[2].content) == parse_reasoned("<reasoning>R</reasoning><answer>A</answer>")


@pytest.mark.parametrize(
    ("text", "reasoning", "answer", "repaired"),
    [
        ("<reasoning>think</reasoning><answer>Go on.</answer>", "think", "Go on.", False),
        ("<reasoning>think<reasoning><answer>Go on.</answer>", "think", "Go on.", True),  # CRA-v1-7B's doubled tag
        ("<reasoning>think</reasoning><answer>Go on and on", "think", "Go on and on", True),  # cut off
        ("<reasoning>think<answer>Go on.</answer>", "think", "Go on.", True),
        ("<reasoning>think</reasoning>\nGo on.", "think", "Go on.", True),
        ("think</reasoning><answer>Go on.</answer>", "think", "Go on.", True),
        ("Just a story.", "", "Just a story.", True),
        ("<reasoning>think</reasoning><answer>Go on.</answer> trailing", "think", "Go on.", True),
        ("<REASONING> think </REASONING>\n<Answer>\nGo on.\n</Answer>", "think", "Go on.", False),
    ],
)
def test_lenient_parsing(text, reasoning, answer, repaired):
    parsed = parse_reasoned(text)
    assert (parsed.reasoning, parsed.answer, not parsed.clean) == (reasoning, answer, repaired)


def test_reasoning_only_has_no_answer():
    parsed = parse_reasoned("<reasoning>still thinking when the tokens ran out")
    assert parsed.answer == "" and "no answer" in parsed.repairs


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("<reasoning>R</reasoning>", "found <reasoning> </reasoning>"),
        ("<reasoning>R<reasoning><answer>A</answer>", "once each"),
        ("<reasoning> </reasoning><answer>A</answer>", "empty reasoning"),
        ("<reasoning>R</reasoning>x<answer>A</answer>", "between"),
        ("<reasoning>R</reasoning><answer>A</answer>x", "after </answer>"),
        ("<answer>A</answer><reasoning>R</reasoning>", "in order"),
    ],
)
def test_tag_problems(text, needle):
    problems = tag_problems(text)
    assert problems and needle in " ".join(problems)


def test_record_roles_are_checked():
    with pytest.raises(ValueError, match="roles must be"):
        ContinuationRecord.model_validate(
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}]}
        )
    with pytest.raises(ValueError, match="empty"):
        user_turn("cra", "  ")
    with pytest.raises(ValueError):
        render_reasoned("cra", "", "A")


@pytest.mark.parametrize("fmt", ["cra", "chat"])
@pytest.mark.parametrize("guidance", [None, "She finds it."])
def test_prompt_parts_read_back_what_user_turn_wrote(fmt, guidance):
    context = "First line.\n\nSecond paragraph, with ### marks."
    assert prompt_parts(user_turn(fmt, context, guidance, "3 sentences")) == (context, guidance)
