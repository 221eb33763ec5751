"""The counter interface, the reference counter (Rust ``tokenizers``) and the word estimate.

Also what the other modules need to know about a ``tokenizers.Tokenizer`` (its normalizer, its
pre-tokenizer pattern, its added tokens), read from its serialized state, and whether the split lemma
of :mod:`novelcraft.tokens.spans` holds for it. ``tokenizers`` itself is never imported here: a
tokenizer object is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: The pre-tokenizer pattern of Qwen2, Qwen2.5 and Qwen3 tokenizers (``tokenizer.json``, Split, Isolated).
QWEN2_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of plain text (no special tokens added)."""

    name: str

    def count(self, text: str) -> int:
        """Tokens of ``text``."""

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, in order."""


class HFTokenCounter:
    """Counts with a Rust ``tokenizers.Tokenizer``; batches go through ``encode_batch_fast`` (parallel, no offsets).

    This is the reference every other counter is checked against.
    """

    backend = "tokenizers"

    def __init__(self, tokenizer: Tokenizer, name: str, batch_size: int = 1024) -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        #: whether the split lemma of :mod:`novelcraft.tokens.spans` holds for this tokenizer
        self.splits_at_spaces = splits_at_spaces(tokenizer)
        # tokenizers < 0.20 has no encode_batch_fast; the ids are the same either way
        self._encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    def count(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, encoded ``batch_size`` at a time."""
        out: list[int] = []
        for i in range(0, len(texts), self.batch_size):
            chunk = list(texts[i : i + self.batch_size])
            out.extend(len(e) for e in self._encode_batch(chunk, add_special_tokens=False))
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def __repr__(self) -> str:
        return f"HFTokenCounter({self.name!r})"


class WordEstimateCounter:
    """words x factor, rounded up. Only used when a recipe asks for ``method: estimate``."""

    backend = "estimate"
    splits_at_spaces = False  # the rounding makes the estimate of a join differ from the sum of its parts

    def __init__(self, tokens_per_word: float = 1.3) -> None:
        self.tokens_per_word = tokens_per_word
        self.name = f"estimate:words*{tokens_per_word}"

    def count(self, text: str) -> int:
        """Words of ``text`` times the factor, rounded up."""
        words = len(text.split())
        return int(-(-words * self.tokens_per_word // 1))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """The estimate of each text, in order."""
        return [self.count(t) for t in texts]


# --------------------------------------------------------------------------- what a tokenizer does


def _state(component: Any) -> dict[str, Any] | None:
    if component is None:
        return None
    state: dict[str, Any] = json.loads(component.__getstate__())
    return state


def split_pattern(tokenizer: Tokenizer) -> str | None:
    """The regex of a ``Sequence[Split(regex, Isolated), ByteLevel(no regex, no prefix space)]`` pre-tokenizer."""
    state = _state(tokenizer.pre_tokenizer)
    if not state or state.get("type") != "Sequence" or len(state.get("pretokenizers", [])) != 2:
        return None
    split, byte_level = state["pretokenizers"]
    if split.get("type") != "Split" or split.get("behavior") != "Isolated" or split.get("invert"):
        return None
    if byte_level.get("type") != "ByteLevel" or byte_level.get("use_regex") or byte_level.get("add_prefix_space"):
        return None
    pattern = split.get("pattern", {}).get("Regex")
    return pattern if isinstance(pattern, str) else None


def normalizer_kind(tokenizer: Tokenizer) -> str | None:
    """``None`` (no normalizer), ``'NFC'``, or the JSON of any other normalizer."""
    state = _state(tokenizer.normalizer)
    if state is None:
        return None
    return "NFC" if state == {"type": "NFC"} else json.dumps(state, sort_keys=True)


def plain_bpe(tokenizer: Tokenizer) -> bool:
    """Whether the model is a deterministic byte-level BPE encoding each pre-token on its own (no dropout, no
    unknown token, no subword prefix or suffix, no byte fallback) and encode neither truncates nor pads."""
    if tokenizer.truncation is not None or tokenizer.padding is not None:
        return False
    m = tokenizer.model
    if type(m).__name__ != "BPE":
        return False
    fields = ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback")
    return not any(getattr(m, k, None) for k in fields)


def splits_at_spaces(tokenizer: Tokenizer) -> bool:
    """Whether the split lemma of :mod:`novelcraft.tokens.spans` is established for ``tokenizer``: NFC or no
    normalizer, the Qwen2 pre-tokenizer pattern + byte level, a plain BPE model (:func:`plain_bpe`), and no
    added token that holds whitespace, starts with a letter or digit, or strips whitespace."""
    if normalizer_kind(tokenizer) not in (None, "NFC"):
        return False
    if split_pattern(tokenizer) != QWEN2_PRETOKENIZE_PATTERN or not plain_bpe(tokenizer):
        return False
    for t in tokenizer.get_added_tokens_decoder().values():
        if t.lstrip or t.rstrip or t.single_word or t.content[:1].isalnum() or any(c.isspace() for c in t.content):
            return False
    return True
