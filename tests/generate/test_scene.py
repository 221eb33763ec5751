"""``novelcraft.generate.scene``: the stop conditions of a generated scene."""

from __future__ import annotations

from novelcraft.generate.scene import check_scene, repetition_ratio, retry_note, trim_to_sentence_end

GOOD = " ".join(f"The keeper climbs stair {i} and counts the gears of wheel {i}." for i in range(10))


def test_good_scene_passes():
    c = check_scene(GOOD, "stop", min_words=30, max_repetition=0.35)
    assert c.ok and c.words == len(GOOD.split()) and not c.trimmed


def test_empty_short_and_repetitive_scenes_are_rejected():
    assert check_scene("  <|im_end|>", "stop", min_words=5, max_repetition=0.35).problem == "empty"
    short = check_scene("One line only.", "stop", min_words=5, max_repetition=0.35)
    assert short.problem == "too_short" and short.words == 3
    loop = check_scene("The bell rings over the water. " * 20, "stop", min_words=5, max_repetition=0.35)
    assert loop.problem == "repetition" and loop.repetition > 0.8


def test_cut_off_scene_is_trimmed_or_rejected():
    cut = GOOD + " And then the keeper turned towards the"
    c = check_scene(cut, "length", min_words=30, max_repetition=0.35)
    assert c.ok and c.trimmed and c.text == GOOD
    assert check_scene(cut, "length", min_words=30, max_repetition=0.35, trim_cut_off=False).problem == "cut_off"
    assert (
        check_scene("no sentence end at all in this text", "length", min_words=3, max_repetition=0.35).problem
        == "cut_off"
    )
    assert trim_to_sentence_end('He said "Go." And then') == 'He said "Go."'


def test_repetition_ratio_and_notes():
    assert repetition_ratio("a b c d e f g") == 0.0
    assert repetition_ratio("") == 0.0
    short = check_scene("Too short.", "stop", min_words=50, max_repetition=0.35)
    note = retry_note(short, min_words=50, target_words=120)
    assert "2 words" in note and "50 words" in note and "120" in note
