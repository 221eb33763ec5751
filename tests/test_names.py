"""``novelcraft.names``: proper names in prose without a tagger (shared by the gates, stage quality and bench)."""

from __future__ import annotations

from novelcraft.names import capitalised_names, name_words


def test_capitalised_names_heuristics():
    text = (
        "Then Anna walked in. She looked at Mr. Brown and at Anna's coat. "
        "The Duchess laughed. Later Ernest Everhard spoke to Anna. Monday was grey. Silence fell. Perhaps it would rain."
    )
    names = capitalised_names(text)
    assert names["Anna"] == 3  # possessive folded, sentence-start not needed here
    assert names["Mr Brown"] == 1
    assert names["Ernest Everhard"] == 1
    for not_a_name in ("Then", "She", "The", "Monday", "Perhaps", "Later"):
        assert not_a_name not in names
    assert names["Duchess"] == 1  # capitalised after an article: a title used as a name
    # a word that only ever opens sentences is not taken for a name
    assert "Silence" not in names


def test_name_words_identify_a_name() -> None:
    assert name_words("Captain Ahab") == ["Ahab"]
    assert name_words("the Bishop") == ["Bishop"]
    assert name_words("Mr. Ernest Everhard") == ["Ernest", "Everhard"]
    assert name_words("the narrator") == [] and name_words("two soldiers") == []
