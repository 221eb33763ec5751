"""``novelcraft.dataset.card``: the data card says what was compiled, as numbers."""

from __future__ import annotations

from novelcraft.dataset import compile_books, render_data_card


def test_card_and_summary_say_what_the_split_did(counter, tiny_book, recipe) -> None:
    r = recipe(split={"by": "scene", "validation_fraction": 0.1})
    result = compile_books([tiny_book(narrative=2, reference=0)], r, counter)
    assert (len(result.train), len(result.validation)) == (1, 1)
    did = (
        "by scene: 1 of 2 records (50%) held out for validation "
        "(asked: 0.1; at least one record is held out when the fraction is above 0)"
    )
    card = render_data_card(result.stats, r)
    split = card.split("## Split\n\n", 1)[1].split("\n\n", 1)[0]
    assert split.splitlines()[0] == f"B{did[1:]}, seed 0."
    assert "validation fraction 0.1" not in card
    assert f"  split: {did}" in result.summary().splitlines()


def test_card_is_deterministic_and_lists_the_files(counter, tiny_book, recipe) -> None:
    r = recipe(split={"by": "scene", "validation_fraction": 0.5})
    result = compile_books([tiny_book(narrative=4, reference=0)], r, counter)
    card = render_data_card(result.stats, r)
    assert card == render_data_card(result.stats, r)
    assert "| `train.jsonl` | 2 records |" in card and "| `validation.jsonl` | 2 records |" in card
    assert card.endswith("```\n")
