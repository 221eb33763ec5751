"""Fast exact BPE engines behind the :class:`~novelcraft.tokens.counter.TokenCounter` interface.

Two engines can count in place of the reference (Rust ``tokenizers``), over the tokenizer's own vocabulary:

- ``tiktoken``: an ``Encoding`` built from the tokenizer's byte-level BPE ranks (rank = token id) and its
  own pre-tokenizer pattern (:class:`TiktokenCore`);
- ``bpe-qwen``: the linear-time Qwen BPE of the ``bpe-qwen`` package over the tokenizer's own
  ``vocab.json``/``merges.txt`` (:class:`BpeQwenCore`).

Neither knows the tokenizer's added tokens (``<|im_start|>`` ...) nor, for tiktoken, its normalizer:
:class:`FastTokenCounter` cuts texts at added tokens the way the tokenizer does (each counts one, the
text between is counted on its own) and sends to the reference every text the engine cannot be trusted
with (see :meth:`FastTokenCounter.engine_takes`). An engine is used only after the parity check of
:mod:`novelcraft.tokens.parity`. Nothing is imported at module import time: ``tiktoken`` and
``bpe_qwen`` are imported when an engine is built.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .counter import QWEN2_PRETOKENIZE_PATTERN, HFTokenCounter, normalizer_kind, split_pattern

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class BPECore(Protocol):
    """A BPE engine over a tokenizer's own vocabulary, for text without added tokens.

    ``routes``: None, or whether a non-ASCII character is one the engine classes otherwise than the
    reference; :class:`FastTokenCounter` sends every text holding one to the reference.
    """

    routes: Callable[[str], bool] | None

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text."""

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` (the parity check compares them with the reference's)."""


def _byte_level_decoder() -> dict[int, str]:
    """``str.translate`` table from byte-level BPE characters (GPT-2's byte-to-unicode map) to their bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[256 + extra] = chr(b)
            extra += 1
    return table


#: Texts of at most this many characters are remembered by the engines: the build counts the first and last
#: words of every paragraph (:class:`~novelcraft.tokens.spans.SpanCounter`), and words recur.
SHORT_TEXT = 24
#: At most this many remembered texts (a few MB; a book has some thousands); emptied when full.
MEMO_ENTRIES = 1 << 16


def memo_counts(count: Callable[[str], int], memo: dict[str, int], texts: Sequence[str]) -> list[int]:
    """``count(t)`` of each text, short texts (:data:`SHORT_TEXT`) looked up in ``memo`` first: a dictionary
    hit costs a fraction of an engine call, and the build asks for the same short texts often."""
    out = []
    for t in texts:
        if len(t) > SHORT_TEXT:
            out.append(count(t))
            continue
        n = memo.get(t)
        if n is None:
            if len(memo) >= MEMO_ENTRIES:
                memo.clear()
            n = memo[t] = count(t)
        out.append(n)
    return out


class TiktokenCore:
    """``tiktoken`` over the tokenizer's vocabulary (rank = id) and pre-tokenizer pattern, for texts that are
    already in the tokenizer's normal form (:class:`FastTokenCounter` sends it no others)."""

    routes: Callable[[str], bool] | None = None

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding
        self._memo: dict[str, int] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> TiktokenCore:
        """Build from a byte-level BPE ``tokenizers.Tokenizer`` with a Split(regex) + ByteLevel pre-tokenizer."""
        import tiktoken

        pattern = split_pattern(tokenizer)
        if pattern is None:
            raise ValueError("the pre-tokenizer is not Split(regex) + ByteLevel")
        table = _byte_level_decoder()
        ranks = {
            tok.translate(table).encode("latin-1"): i for tok, i in tokenizer.get_vocab(with_added_tokens=False).items()
        }
        return cls(tiktoken.Encoding("novelcraft-bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={}))

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text (one encode each, short texts remembered: see :func:`memo_counts`)."""
        encode = self.encoding._core_bpe.encode_ordinary  # the Rust call, without tiktoken's Python wrapper
        try:
            return memo_counts(lambda t: len(encode(t)), self._memo, texts)
        except UnicodeEncodeError:  # a lone surrogate: tiktoken's own wrapper mends it
            return [len(self.encoding.encode_ordinary(t)) for t in texts]

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return list(self.encoding.encode_ordinary(text))


class BpeQwenCore:
    """``bpe-qwen``'s linear-time BPE (``count_tokens``; it NFC-normalizes itself) over ``vocab.json`` +
    ``merges.txt`` written from the tokenizer's model.

    Its pre-tokenizer (0.1.5) classes some non-ASCII characters otherwise than the reference after spaces:
    numbers and whitespace (``'a ½'`` is ``'a'``, ``' ½'`` to it; ``'a'``, ``' '``, ``'½'`` to the
    reference; likewise ``'a ୦'``, ``'a Ⅷ'``, ``'a \u00a0'``), and marks and symbols after a run of spaces
    (``'a  \u0345'``, ``'a  Ⓐ'``). Texts holding a non-ASCII character of those classes
    (:func:`bpe_qwen_routes`) go to the reference; on every other code point it agrees (checked for each one
    in a set of contexts by the tests).
    """

    def __init__(self, impl: Any) -> None:
        self.impl = impl
        self._memo: dict[str, int] = {}
        self.routes: Callable[[str], bool] | None = bpe_qwen_routes

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> BpeQwenCore:
        """Build from the tokenizer's BPE model (its files are written to a temporary folder and read once)."""
        if split_pattern(tokenizer) != QWEN2_PRETOKENIZE_PATTERN:
            raise ValueError("bpe-qwen implements the Qwen2 pre-tokenizer only, and this tokenizer has another one")
        module = bpe_qwen_module()
        with tempfile.TemporaryDirectory(prefix="novelcraft-bpe-qwen-") as tmp:
            tokenizer.model.save(tmp)
            return cls(module.QwenTokenizer(tmp))

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text (short texts remembered: see :func:`memo_counts`)."""
        return memo_counts(self.impl.count_tokens, self._memo, texts)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return list(self.impl.encode(text))


#: Unicode categories whose non-ASCII characters bpe-qwen's pre-tokenizer may class otherwise than the
#: reference: numbers (its ``\\p{N}``), marks and other symbols (some are alphabetic to it: U+0345, Ⓐ).
BPE_QWEN_ROUTED_CATEGORIES = frozenset({"Nd", "Nl", "No", "Mn", "Mc", "Me", "So"})


def bpe_qwen_routes(char: str) -> bool:
    """Whether ``char`` is a non-ASCII character of :data:`BPE_QWEN_ROUTED_CATEGORIES` or one Python calls
    whitespace (Z*, U+0085 ...): the characters bpe-qwen's pre-tokenizer may disagree on."""
    return not char.isascii() and (unicodedata.category(char) in BPE_QWEN_ROUTED_CATEGORIES or char.isspace())


def bpe_qwen_module() -> Any:
    """The compiled ``bpe_qwen.bpe_qwen`` extension, loaded without the package's ``__init__`` (which imports
    transformers and huggingface_hub for its drop-in tokenizer classes, none of which a count needs)."""
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("bpe_qwen")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bpe-qwen is not installed")
    for root in spec.submodule_search_locations:
        for so in sorted(Path(root).glob("bpe_qwen.*")):
            if so.suffix in (".so", ".pyd"):
                loader = importlib.machinery.ExtensionFileLoader("bpe_qwen.bpe_qwen", str(so))
                mod_spec = importlib.util.spec_from_file_location("bpe_qwen.bpe_qwen", so, loader=loader)
                if mod_spec is None:
                    break
                module = importlib.util.module_from_spec(mod_spec)
                loader.exec_module(module)
                return module
    raise ImportError("bpe-qwen ships no compiled bpe_qwen module")


#: How each fast engine is built from a ``tokenizers.Tokenizer``, by backend name.
CORES: dict[str, Callable[[Tokenizer], BPECore]] = {
    "tiktoken": TiktokenCore.from_tokenizer,
    "bpe-qwen": BpeQwenCore.from_tokenizer,
}


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@lru_cache(maxsize=4)
def suspect_characters(routes: Callable[[str], bool] | None = None) -> re.Pattern[str]:
    """A pattern matching every non-ASCII code point of the BMP that this Python's :mod:`unicodedata` does not
    know (Cn), every surrogate (Cs), and every one ``routes`` holds true: one class of the BMP, which
    :mod:`re` scans with a bitmap (a class reaching beyond the BMP is a list of ranges tried one by one)."""
    ranges: list[tuple[int, int]] = []
    start = -1
    for c in range(0x80, 0x10001):
        ch = chr(c) if c < 0x10000 else ""
        if ch and (unicodedata.category(ch) in ("Cn", "Cs") or (routes is not None and routes(ch))):
            if start < 0:
                start = c
        elif start >= 0:
            ranges.append((start, c - 1))
            start = -1
    return re.compile("[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges) + "]")


def plain_code_points(text: str, routes: Callable[[str], bool] | None = None) -> bool:
    """Whether every code point of ``text`` is assigned in this Python's :mod:`unicodedata`, none is a
    surrogate and ``routes`` holds for none (a regex scan of the BMP; characters beyond it, rare in books and
    told by the length of the UTF-16 form, are looked up one by one)."""
    if text.isascii():
        return True
    if suspect_characters(routes).search(text) is not None:
        return False
    return len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text) or not any(
        unicodedata.category(c) == "Cn" or (routes is not None and routes(c))
        for c in (m.group() for m in _ASTRAL.finditer(text))
    )


def known_code_points(text: str) -> bool:
    """Whether every code point of ``text`` is assigned in this Python's :mod:`unicodedata` and none is a
    surrogate."""
    return plain_code_points(text)


class FastTokenCounter:
    """A fast BPE engine behind the :class:`TokenCounter` interface, with added tokens and normalization handled
    here; its counts are the reference's on every text.

    Texts holding an added token (``<|im_start|>`` ...) are cut at them as the reference tokenizer cuts
    them (it matches added tokens on the raw text, leftmost and longest): each added token counts one,
    each text between is counted by the engine. When an added token strips whitespace, must be a single
    word or is matched on normalized text, such texts are counted by the reference instead.

    Every text (or text between added tokens) that holds a code point this Python's Unicode tables do not
    know is counted by the reference (the engines' regex tables may class it otherwise than the
    reference's), and so is, when the tokenizer normalizes with NFC, every one not already in NFC: the
    reference's NFC tables (Rust ``unicode-normalization-alignments``) are older than Python's, and the
    two disagree on characters assigned in between (``'\\u0357\\u07fd'`` is reordered by Python and not by
    the reference). On the rest they agree: a text normalized under Python's tables
    is left unchanged by any older tables (a character they do not know is a starter to them with no
    mapping, which only blocks compositions and reorderings; Unicode's stability policy keeps the
    mappings and combining classes of the characters both know); routing unknown code points away keeps
    this true should the reference's tables ever become newer than Python's.
    So is every text holding a character the engine classes otherwise than the reference (``core.routes``:
    bpe-qwen's numbers, marks, symbols and whitespace outside ASCII).

    ``name``, ``tokenizer``, :meth:`encode` and ``splits_at_spaces`` are the reference's.
    """

    def __init__(self, reference: HFTokenCounter, core: BPECore, backend: str) -> None:
        self.reference = reference
        self.core = core
        self.backend = backend
        self.name = reference.name
        self.tokenizer = reference.tokenizer
        self.splits_at_spaces = reference.splits_at_spaces
        self._added, self._route_added = added_token_matcher(reference.tokenizer)
        self._nfc = normalizer_kind(reference.tokenizer) == "NFC"
        self._routes: Callable[[str], bool] | None = getattr(core, "routes", None)

    def _normal(self, text: str) -> bool:
        """Whether the engine's view of ``text`` is the reference's: ASCII, or only code points this Python
        knows, none the engine routes to the reference (``core.routes``), and already NFC when the tokenizer
        normalizes with NFC."""
        if text.isascii():
            return True
        return (not self._nfc or unicodedata.is_normalized("NFC", text)) and plain_code_points(text, self._routes)

    def engine_takes(self, text: str) -> bool:
        """Whether ``text`` goes to the engine whole (no added token in it; normalized already)."""
        return self._normal(text) and (self._added is None or self._added.search(text) is None)

    def count(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens added)."""
        return self.count_batch([text])[0]

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, in order.

        The common case is decided on the texts joined by line breaks, in three C-level scans: a line break
        never composes or reorders with its neighbours, so the join is NFC exactly when every text is,
        and it holds an added token or an unknown code point whenever one of the texts does.
        """
        take = self.engine_takes
        if len(texts) > 1 and take("\n".join(texts)):
            return self.core.count_texts(texts)
        rest = [i for i, t in enumerate(texts) if not take(t)]
        if not rest:
            return self.core.count_texts(texts)
        out = [0] * len(texts)
        held = set(rest)
        engine = [i for i in range(len(texts)) if i not in held]
        for i, n in zip(engine, self.core.count_texts([texts[i] for i in engine])):
            out[i] = n
        to_reference: list[int] = []
        for i in rest:
            got = self._count_with_added(texts[i])
            if got is None:
                to_reference.append(i)
            else:
                out[i] = got
        for i, n in zip(to_reference, self.reference.count_batch([texts[i] for i in to_reference])):
            out[i] = n
        return out

    def _count_with_added(self, text: str) -> int | None:
        """Tokens of a text holding added tokens, from the engine, or None when the reference must count it."""
        if self._added is None or self._route_added:
            return None
        parts = self._added.split(text)  # text, token, text, token, ..., text
        between = [p for p in parts[0::2] if p]
        if not all(self._normal(p) for p in between):
            return None
        return len(parts) // 2 + sum(self.core.count_texts(between))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, from the reference tokenizer."""
        return self.reference.encode(text)

    def __repr__(self) -> str:
        return f"FastTokenCounter({self.name!r}, backend={self.backend!r})"


def added_token_matcher(tokenizer: Tokenizer) -> tuple[re.Pattern[str] | None, bool]:
    """(a pattern matching any added token, leftmost and longest first; whether texts holding one must go to
    the reference because some added token strips whitespace, must be a single word or is normalized)."""
    tokens = list(tokenizer.get_added_tokens_decoder().values())
    if not tokens:
        return None, False
    contents = sorted({t.content for t in tokens if t.content}, key=len, reverse=True)
    route = any(t.lstrip or t.rstrip or t.single_word or t.normalized for t in tokens)
    return re.compile("(" + "|".join(re.escape(c) for c in contents) + ")"), route
