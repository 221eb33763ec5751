"""Exact token counting with the configured tokenizer, and exact counts of joined texts from their parts.

Nothing is loaded at import time: :func:`load_token_counter` builds a counter from a recipe's
:class:`~novelcraft.recipes.TokenizerConfig`, and every stage receives the counter as an argument.

**Backends** (``tokenizer.backend`` of a recipe). The reference is always the Rust ``tokenizers`` library
reading the model's ``tokenizer.json`` (:class:`HFTokenCounter`, :mod:`novelcraft.tokens.counter`;
batches go through ``encode_batch_fast``, which skips the offsets a count does not need). Two faster
BPE engines, ``tiktoken`` and ``bpe-qwen`` (:mod:`novelcraft.tokens.fast`), can count in its place behind
the same :class:`TokenCounter` interface (:class:`FastTokenCounter`), with added tokens
(``<|im_start|>`` counts one) and normalization handled by the counter, and only after a parity check
on the tokenizer's own vocabulary (:mod:`novelcraft.tokens.parity`). ``auto`` (the default) takes
``tiktoken`` when it is installed and passes, else the reference; an engine that is missing or fails the
check is replaced by the reference with the reason logged. The counter's ``name`` is the tokenizer's, not
the engine's: the counts are the same, so finished work stays valid across backends.

**Counts of joined texts** (:class:`SpanCounter`, :mod:`novelcraft.tokens.spans`): the counts of runs
of paragraphs derived from each paragraph's count, exact by a lemma on the tokenizer's pre-tokenizer,
re-encoding only the stretches across each join.
"""

from .counter import (
    QWEN2_PRETOKENIZE_PATTERN,
    HFTokenCounter,
    TokenCounter,
    WordEstimateCounter,
    normalizer_kind,
    plain_bpe,
    split_pattern,
    splits_at_spaces,
)
from .fast import CORES, BPECore, BpeQwenCore, FastTokenCounter, TiktokenCore, added_token_matcher
from .load import (
    AUTO_ORDER,
    FAST_BACKENDS,
    QWEN3_FAMILY_PREFIXES,
    _tokenizer_file_for,
    bundled_qwen3_tokenizer_file,
    load_token_counter,
    tokenizer_folder,
)
from .parity import PARITY_PROBES, parity_failures, select_counter
from .spans import SpanCounter, cut_spaces

__all__ = [
    "AUTO_ORDER",
    "BPECore",
    "BpeQwenCore",
    "CORES",
    "FAST_BACKENDS",
    "FastTokenCounter",
    "HFTokenCounter",
    "PARITY_PROBES",
    "QWEN2_PRETOKENIZE_PATTERN",
    "QWEN3_FAMILY_PREFIXES",
    "SpanCounter",
    "TiktokenCore",
    "TokenCounter",
    "WordEstimateCounter",
    "_tokenizer_file_for",
    "added_token_matcher",
    "bundled_qwen3_tokenizer_file",
    "cut_spaces",
    "load_token_counter",
    "normalizer_kind",
    "parity_failures",
    "plain_bpe",
    "select_counter",
    "split_pattern",
    "splits_at_spaces",
    "tokenizer_folder",
]
