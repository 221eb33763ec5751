"""The writer's assistant: story tail, trimming at sentence ends, lenient answers, guidance, Book JSON input,
``novelcraft continue --json``; (slow) the embedded model through the real transformers engine."""

from __future__ import annotations

import io
import json

import pytest

from novelcraft import cli
from novelcraft.continuation.assistant import (
    AssistantRecipe,
    continue_story,
    read_story,
    story_tail,
    trim_continuation,
)
from novelcraft.errors import NovelcraftError
from novelcraft.llm.testing import ScriptedEngine
from novelcraft.llm.types import LLMError, LLMResponse

STORY = "It was late. The wind rose.\n\nMara lit the lamp. Someone knocked. She froze."


def test_story_tail_is_the_last_sentences():
    assert story_tail(STORY, 2) == "Someone knocked. She froze."
    assert story_tail(STORY, 99) == STORY


def test_trim_at_sentence_ends():
    text = "She opened it. A man stood there. He smiled. Then he spoke of the sea and"
    assert trim_continuation(text, sentences=2, words=None, cut_off=False) == (
        "She opened it. A man stood there.",
        True,
    )
    assert trim_continuation(text, sentences=None, words=7, cut_off=False)[0] == "She opened it. A man stood there."
    assert trim_continuation(text, sentences=None, words=1, cut_off=False)[0] == "She opened it."  # one at least
    # a generation cut at its token limit loses its unfinished last sentence
    assert trim_continuation(text, sentences=None, words=None, cut_off=True)[0].endswith("He smiled.")


def _recipe(**kw) -> AssistantRecipe:
    return AssistantRecipe.model_validate({"name": "t", **kw})


def test_continue_story_with_a_doubled_tag_and_guidance():
    engine = ScriptedEngine(
        lambda req: (
            "<reasoning>Mara fears the visitor.<reasoning><answer>She opened the door. It was Tom. "
            "He was wet. He smiled.</answer>"
        )
    )
    out = continue_story(STORY, _recipe(length={"sentences": 2}), engine=engine, guidance="Tom has come back.")
    assert out.reasoning == "Mara fears the visitor." and out.continuation == "She opened the door. It was Tom."
    assert out.trimmed and out.sentences == 2 and "reasoning closed by a second <reasoning>" in out.repairs
    user = engine.requests[0].messages[0]["content"]
    assert "### Guidance: Tom has come back." in user and user.endswith("Someone knocked. She froze.\n")


def test_chat_format_asks_for_the_length_and_words_override():
    engine = ScriptedEngine(lambda req: "<reasoning>r</reasoning><answer>One two three. Four five six. Seven.</answer>")
    out = continue_story(STORY, _recipe(format="chat"), engine=engine, words=6)
    assert out.continuation == "One two three. Four five six."
    assert engine.requests[0].messages[1]["content"].endswith("Write about 6 words.")
    assert engine.requests[0].messages[0]["role"] == "system"


def test_failures_are_one_clear_error():
    empty = ScriptedEngine(lambda req: "<reasoning>only thinking")
    with pytest.raises(LLMError, match="no continuation"):
        continue_story(STORY, _recipe(), engine=empty)
    down = ScriptedEngine(lambda req: LLMResponse(key=req.key, text="", error="connection refused"))
    with pytest.raises(LLMError, match="connection refused"):
        continue_story(STORY, _recipe(), engine=down)
    with pytest.raises(NovelcraftError, match="not both"):
        continue_story(STORY, _recipe(), engine=empty, sentences=2, words=9)
    with pytest.raises(NovelcraftError, match="empty"):
        read_story("-", stdin=io.StringIO("  \n"))


def test_story_from_a_book_position(book_of):
    book, path = book_of("alice-in-wonderland")
    text = read_story(book=str(path), chapter=2, sentence=5)
    assert text.startswith("“Curiouser and curiouser!”") and text.count(".") + text.count("!") >= 5
    assert not text.startswith("#")
    with pytest.raises(NovelcraftError, match="no chapter 99"):
        read_story(book=str(path), chapter=99)


def test_cli_json_output(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "a.yaml"
    recipe.write_text("version: 1\nkind: assistant\nname: t\nlength: {sentences: 1}\n")
    story = tmp_path / "s.txt"
    story.write_text(STORY)
    import novelcraft.llm.factory as factory

    monkeypatch.setattr(
        factory,
        "make_engine",
        lambda cfg: ScriptedEngine(lambda r: "<reasoning>R</reasoning><answer>She ran. He followed.</answer>"),
    )
    assert cli.main(["continue", str(recipe), "-i", str(story), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["reasoning"], out["continuation"], out["trimmed"]) == ("R", "She ran.", True)
    assert cli.main(["continue", str(recipe), "-i", str(tmp_path / "missing.txt")]) == 1
    assert "cannot read the story" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_model_continues_a_story(tmp_path):
    """The real transformers engine with SmolLM2: an answer comes back split and trimmed (its text is weak)."""
    pytest.importorskip("outlines")
    recipe = _recipe(
        llm={"model": "embedded", "sampling": {"temperature": 0.0, "repetition_penalty": 1.3}},
        length={"sentences": 2, "max_tokens": 120},
        log=True,
        output_dir=str(tmp_path),
    )
    out = continue_story(STORY, recipe)
    assert out.continuation and out.sentences <= 2 and out.completion_tokens > 0
    assert json.loads((tmp_path / "t" / "log.jsonl").read_text().splitlines()[0])["continuation"] == out.continuation
