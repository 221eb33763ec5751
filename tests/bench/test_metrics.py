"""Unit tests of the judge-free metrics on tiny inline texts with known values."""

from __future__ import annotations

from collections import Counter

import pytest

from novelcraft.bench import metrics as m


@pytest.mark.parametrize(
    ("target", "actual", "expected"),
    [
        (1000, 1000, 100.0),
        (1000, 2000, 100.0 * (1 - 1 / 3)),  # twice as long: 66.67
        (1000, 500, 50.0),  # half as long
        (1000, 4000, 0.0),  # 4x: (4 - 1) / 3 = 1
        (1000, 250, 0.0),  # 1/4: clipped at 0
        (900, 1200, 100.0 * (1 - (1200 / 900 - 1) / 3)),
        (1000, 0, 0.0),
    ],
)
def test_length_score_longbench_write(target, actual, expected):
    assert m.length_score(target, actual) == pytest.approx(expected)


def test_length_score_rejects_bad_target():
    with pytest.raises(ValueError):
        m.length_score(0, 10)


def test_words_folds_case_punctuation_and_curly_apostrophes():
    assert m.words("“Don’t,” said ALICE -- *twice*!") == ["don't", "said", "alice", "twice"]


def test_repetition_rate_planted_loop():
    toks = "a b c d a b c d".split()  # 4-grams: abcd bcda cdab dabc abcd -> 4 unique of 5
    assert m.repetition_rate(toks, 4) == pytest.approx(0.2)
    assert m.repetition_rate("one two three".split(), 4) == 0.0
    assert m.repetition_rate(("the cat sat " * 20).split(), 4) > 0.9


def test_distinct_n_known_values():
    toks = "the cat and the dog".split()
    assert m.distinct_n(toks, 1) == pytest.approx(4 / 5)
    assert m.distinct_n(toks, 2) == pytest.approx(1.0)
    assert m.distinct_n([], 1) == 0.0


def test_windowed_distinct_drops_partial_window():
    toks = ["a", "b", "a", "b", "c", "d", "e", "f", "x"]  # windows of 4: abab (0.5), cdef (1.0); 'x' dropped
    assert m.windowed_distinct(toks, 1, 4) == pytest.approx(0.75)
    assert m.windowed_distinct(["a"], 1, 4) is None


def test_cross_scene_repetition_finds_copied_sentence():
    s1 = m.words("The lighthouse keeper climbed the stairs at dusk and lit the great lamp.")
    s2 = m.words("Morning came. The lighthouse keeper climbed the stairs at dusk and lit the great lamp.")
    s3 = m.words("Nobody on the island remembered the old ferry or its captain.")
    rates = m.cross_scene_repetition([s1, s2, s3], n=5)
    assert rates[0] == 0.0
    grams2 = len(s2) - 4
    assert rates[1] == pytest.approx((len(s1) - 4) / grams2)  # every 5-gram of s1 reappears in s2
    assert rates[2] == 0.0


def test_slop_hits_words_phrases_and_pronoun_slot():
    slop = m.SlopList.from_lines(["# comment", "tapestry", "a testament to", "sent shivers down {pron} spine", ""])
    toks = m.words(
        "It was a testament to her will. It sent shivers down his spine, a tapestry of fear; it sent shivers down the spine."
    )
    hits = m.slop_hits(toks, slop)
    assert hits == Counter({"a testament to": 1, "sent shivers down {pron} spine": 1, "tapestry": 1})
    assert m.slop_index(toks, slop) == pytest.approx(1000 * 3 / len(toks))
    assert m.slop_index([], slop) == 0.0


def test_default_slop_list_is_packaged():
    slop = m.default_slop_list()
    assert ("a", "testament", "to") in slop.phrases
    assert len(slop.phrases) > 100
    assert len(set(slop.phrases)) == len(slop.phrases)


def test_track_entities_renamed_and_dropped_character():
    scenes = [
        Counter({"Anna": 4, "Tomas": 3}),
        Counter({"Anna": 2, "Tomas": 2, "Greta": 1}),
        Counter({"Anna": 3}),
        Counter({"Anne": 3}),  # the writer renamed Anna
        Counter({"Anne": 2}),
        Counter({"Anne": 2, "Greta": 1}),
    ]
    t = m.track_entities(scenes)
    assert t.introduced_per_scene == [2, 1, 0, 1, 0, 0]
    assert ("Anna", "Anne") in t.drift_pairs
    assert t.dropped == ["Tomas"]  # 5 mentions in 2 scenes, last seen in scene 2 of 6
    assert "Greta" not in t.main


def test_track_entities_ignores_forms_of_one_name():
    t = m.track_entities([Counter({"America": 3, "Mr Everhard": 2}), Counter({"American": 3, "Ernest Everhard": 3})])
    assert t.drift_pairs == []


def test_reference_overlap_longest_copied_run():
    ref = "It was a bright cold day in April, and the clocks were striking thirteen. Winston hurried home through the dust."
    index = m.ReferenceIndex.build([ref], n=8, names=["ref"])
    copied = "bright cold day in april and the clocks were striking thirteen"  # 11 words
    text = m.words("Nothing here is shared at all with it, yet " + copied + " and then something new entirely.")
    share, run = m.reference_overlap(text, index)
    assert run == 11
    assert share == pytest.approx((11 - 8 + 1) / (len(text) - 8 + 1))
    assert m.reference_overlap(
        m.words("completely different words that share nothing with the reference text here"), index
    ) == (0.0, 0)


def test_reference_overlap_does_not_chain_across_books():
    a = "one two three four five six seven eight"
    b = "nine ten eleven twelve thirteen fourteen fifteen sixteen"
    index = m.ReferenceIndex.build([a, b], n=4)
    _, run = m.reference_overlap(m.words(a + " " + b), index)
    assert run == 8


def test_progress_bins_by_word_position():
    # four scenes of 10, 10, 10, 70 words: midpoints at 5%, 15%, 25%, 65%
    curve = m.progress_bins([10, 10, 10, 70], [1.0, 2.0, None, 4.0], bins=4)
    assert curve == [1.5, None, 4.0, None]
    assert m.mean([None, 1.0, 3.0]) == 2.0 and m.mean([None]) is None
