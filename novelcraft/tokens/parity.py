"""The parity check a fast engine passes before it counts, and the choice of a counter's engine.

A fast engine (:mod:`novelcraft.tokens.fast`) is used only when it gives identical ids to the reference
on a fixed probe set (prose, dialogue, contractions, digits, whitespace runs, NFC/NFD accents, other
scripts, emoji, long words, added tokens) and identical counts through the counter itself; an engine
that is missing, cannot load the vocabulary or fails the check is replaced by the reference with the
reason logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import setup_hint
from .counter import HFTokenCounter, TokenCounter, plain_bpe
from .fast import BPECore, FastTokenCounter

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

#: Texts a fast engine must encode exactly like the reference before it is used.
PARITY_PROBES: tuple[str, ...] = (
    "Hello world",
    "The soft summer wind stirs the redwoods, and Ernest Everhard smiles at the bishop.",
    "“Curiouser and curiouser!” cried Alice (she was so much surprised, that for the moment she quite forgot).",
    "'Tis the season; I'm sure you'll see it's theirs, we'd've gone. DON'T SHOUT, HE'LL HEAR, SHE'S HERE.",
    "It's 1984: 3.14159, 1,000,000 men, 2nd of May 1849, 10:45 p.m., ½ ¾ ² Ⅻ ٣٤٥ १२३.",
    "12345678901234567890",
    "a  b   c    d\t\te\t \tf",
    "   leading spaces",
    "trailing spaces   ",
    "line one\nline two\r\nline three\rline four",
    "para one.\n\npara two!\n\n\n\npara three?\n \n \t\n  indented",
    '"Yes."\n\n"No!"\n\n* * *\n\n--\n\n...',
    "\n",
    "\n\n",
    " ",
    "",
    "Zoë’s café — naïve façade; résumé, coöperate, Æsir, œuvre, straße, İstanbul, ǅemal",
    "e\u0301te\u0301 cafe\u0301 a\u0308 o\u0302 n\u0303 (decomposed accents)",
    "Анна Каренина: Все счастливые семьи похожи друг на друга.",
    "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.",
    "吾輩は猫である。名前はまだ無い。我是一只猫。",
    "ひらがな カタカナ 한국어 문장입니다 ภาษาไทย",
    "مرحبا بالعالم שלום עולם नमस्ते दुनिया",
    "emoji 🎉🙂 👩‍👩‍👧 🇩🇪 ❤️ ✊🏽",
    "zero\u200bwidth\u00a0nbsp\u2009thin\u3000ideographic\u2028sep\ufeffbom",
    "tab\tseparated\tvalues\x0bvertical\x0cformfeed",
    "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "a" * 300,
    "ab" * 200 + " " + "xyz" * 150,
    "-" * 120 + " " + "=" * 80 + " " + "!?" * 60,
    "https://www.gutenberg.org/ebooks/1342.txt.utf-8 mailto:someone@example.org",
    "def f(x):\n    return {'a': [1, 2, 3]}  # code\n",
    '<p><h2>GLOBAL EVENTS: [,*.*]"]{}}] {}}; // markup</h2></p>',
    "<|im_start|>system\nYou are a novelist.<|im_end|>\n<|im_start|>user\nWrite.<|im_end|>\n<|im_start|>assistant\n",
    "<think>\n\n</think>\n\nAnswer.",
    "<|endoftext|>",
    "word<|im_start|>word",
    "<|im_start|><|im_end|><|im_start|>",
    "<|im_start",
    "<|im_start|",
    "< |im_start| >",
    "<tool_call>{}</tool_call>",
    "it'ſ we'ʟʟ I'M \u212a's",
    "file\x1cgroup\x1drecord\x1eunit\x1f next\x85line mongolian\u180evowel",
    " \u0301 \u0316\u0301a\u0300\u0301 \u0958\u0959 \u1100\u1161\u11a8 \uac00\u11a8",
    "\u0357\u07fd \U0001e4ef\u0316",
)


def parity_failures(
    counter: TokenCounter, reference: HFTokenCounter, probes: Sequence[str] = PARITY_PROBES
) -> list[str]:
    """Where ``counter`` disagrees with ``reference`` on ``probes`` (empty = identical).

    Ids are compared for the probes the counter's engine takes whole (no added token, already normalized),
    counts for every probe, one at a time and as one batch.
    """
    problems: list[str] = []
    core = getattr(counter, "core", None)
    takes = getattr(counter, "engine_takes", None)
    for p in probes:
        want = reference.encode(p)
        if core is not None and takes is not None and takes(p):
            got_ids = core.encode_text(p)
            if got_ids != want:
                k = next((j for j, (a, b) in enumerate(zip(got_ids, want)) if a != b), min(len(got_ids), len(want)))
                problems.append(f"ids of {p!r} from token {k}: {got_ids[k : k + 3]} != {want[k : k + 3]}")
                continue
        got = counter.count(p)
        if got != len(want):
            problems.append(f"count of {p[:40]!r}: {got} != {len(want)}")
    batch = counter.count_batch(list(probes))
    expected = reference.count_batch(list(probes))
    if batch != expected:
        bad = next(i for i, (a, b) in enumerate(zip(batch, expected)) if a != b)
        problems.append(f"batch count of {probes[bad][:40]!r}: {batch[bad]} != {expected[bad]}")
    return problems


def select_counter(
    reference: HFTokenCounter,
    candidates: Sequence[tuple[str, Callable[[Tokenizer], BPECore]]],
    *,
    requested: str,
) -> TokenCounter:
    """The first candidate engine that builds and passes :func:`parity_failures`, else ``reference``.

    Each rejected candidate is logged with its reason: as a warning when the recipe named it
    (``requested``), as information under ``auto`` when it is merely not installed. A tokenizer whose
    model is not a plain BPE or whose encode truncates or pads (:func:`~novelcraft.tokens.counter.plain_bpe`)
    keeps the reference.
    """
    if candidates and not plain_bpe(reference.tokenizer):
        log.warning(
            "token counting: %s is not a plain BPE without truncation or padding; using tokenizers", reference.name
        )
        return reference
    for backend, build in candidates:
        explicit = requested == backend
        try:
            core = build(reference.tokenizer)
        except ImportError as exc:
            level = logging.WARNING if explicit else logging.INFO
            log.log(
                level,
                "token counting: %s is not installed (%s: %s); using tokenizers",
                backend,
                exc,
                setup_hint("fast-tokens"),
            )
            continue
        except Exception as exc:  # an engine that cannot take this vocabulary
            log.warning("token counting: %s cannot load %s (%s); using tokenizers", backend, reference.name, exc)
            continue
        candidate = FastTokenCounter(reference, core, backend)
        problems = parity_failures(candidate, reference)
        if problems:
            log.warning(
                "token counting: %s differs from tokenizers on %d probe(s), first: %s; using tokenizers",
                backend,
                len(problems),
                problems[0],
            )
            continue
        log.info("token counting: %s (identical to tokenizers on %d probes)", backend, len(PARITY_PROBES))
        return candidate
    return reference
