"""Proper names in prose, without a tagger: the one heuristic the stages share (the LLM stages' quality gates,
the stage-quality scores and the novel benchmark's entity tracking).

A name is a run of capitalised words (a title such as ``Mr.`` kept, a possessive ``'s`` dropped) that is not a
common capitalised word (pronouns, sentence openers, days, months, interjections). A run at a sentence start
counts only with evidence that it is a name: it also occurs mid-sentence, or it opens sentences and never
appears in lower case.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z0-9]+)*")

#: Capitalised words that are not names (sentence openers, titles, days, interjections ...).
NOT_NAMES = frozenset(
    """
    a an the and but or nor for so yet if then than when while where whence whither why how what which who whom whose
    i i'm i've i'd i'll me my mine we us our you your he him his she her it its they them their this that these those
    there here now not no yes oh ah alas o well why nay aye ay all any some each every both either neither none one
    after before because though although since until unless as at by in on of off to from with without into onto upon
    about above below over under again once still even only just also too very perhaps indeed surely nothing something
    everything anything everyone someone somebody nobody chapter letter book part volume end finis mr mrs ms miss dr
    sir madam lady lord st mister master monsieur madame mademoiselle herr frau señor doctor professor captain colonel
    general king queen prince princess god heaven hell monday tuesday wednesday thursday friday saturday sunday january
    february march april may june july august september october november december christmas english french german
    let do does did don't can can't could would should shall will won't must might is was were are be been have has
    had go come look see say said tell yes good poor dear ha hm hush hello goodbye listen wait stop come quick then
    later soon suddenly meanwhile instead sometimes often finally slowly quickly together nevertheless besides however
    therefore thus hence tonight today tomorrow yesterday everybody everywhere outside inside behind beyond across
    around through near like maybe please thank thanks it's that's what's there's let's he's she's we're they're
    you're i'd
    """.split()
)
TITLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "sir",
        "lady",
        "lord",
        "captain",
        "colonel",
        "professor",
        "madame",
        "monsieur",
        "uncle",
        "aunt",
        "father",
        "mother",
    }
)

_CAP_RUN = re.compile(
    r"(?<![\w’'])((?:Mr|Mrs|Ms|Dr|St)\.?\s+)?([A-Z][a-z]+(?:['’][a-z]+)?(?:\s+(?:[A-Z][a-z]+|de|van|von|du|of)(?=[\s,.;:!?'’\"”)]))*)"
)
_SENT_START = re.compile(r"(?:^|[.!?:;\"“”'‘’(\n—-]\s*|\n\s*)$")


def _clean_name(raw: str) -> str | None:
    parts = [p for p in re.split(r"\s+", raw.strip()) if p]
    parts = [re.sub(r"['’]s$", "", p) for p in parts]
    while parts and (parts[-1].lower() in ("of", "de", "van", "von", "du") or parts[-1].lower() in NOT_NAMES):
        parts.pop()
    while parts and parts[0].lower() in NOT_NAMES and parts[0].lower() not in TITLES:
        parts.pop(0)
    if not parts or all(p.lower() in TITLES or p.lower() in NOT_NAMES for p in parts):
        return None
    return " ".join(parts)


def name_mentions(text: str) -> tuple[Counter[str], Counter[str]]:
    """(mid-sentence, sentence-initial) capitalised-run mentions of ``text``."""
    mid: Counter[str] = Counter()
    start: Counter[str] = Counter()
    for m in _CAP_RUN.finditer(text):
        title = (m.group(1) or "").strip().rstrip(".")
        name = _clean_name(m.group(2))
        if name is None:
            continue
        full = f"{title} {name}" if title else name
        before = text[max(0, m.start() - 3) : m.start()]
        opener_stripped = not m.group(2).startswith(name.split()[0])
        if _SENT_START.search(before) and not title and not opener_stripped:
            start[full] += 1
        else:
            mid[full] += 1
    return mid, start


def _resolve(
    mid: Counter[str], start: Counter[str], known: set[str], lower_vocab: set[str], start_totals: Counter[str]
) -> Counter[str]:
    out: Counter[str] = Counter(mid)
    for name, c in start.items():
        parts = name.lower().split()
        if name in known:
            out[name] += c
        elif " " in name and _clean_name(name.split(" ", 1)[1]) in known:
            # "Later Ernest Everhard": the opener may be an ordinary word, the rest is a known name
            out[_clean_name(name.split(" ", 1)[1]) or name] += c
        elif start_totals[name] >= 2 and not any(p in lower_vocab for p in parts):
            # opens sentences only, but is never written in lower case: a name ("Anna said ...")
            out[name] += c
        elif " " in name:
            tail = _clean_name(name.split(" ", 1)[1])
            if tail and not any(p in lower_vocab for p in tail.lower().split()):
                out[tail] += c
    return out


def capitalised_names(text: str) -> Counter[str]:
    """Heuristic proper-name mentions: runs of capitalised words (a trailing possessive ``'s`` removed;
    pronouns, titles alone, days, months, interjections and other common capitalised words dropped).

    A run at a sentence start counts only when the same name also occurs mid-sentence, or when it opens
    at least two sentences and never appears in lower case in the text. No tagger or model: some
    capitalised nouns (``Heaven``, places) count as names. That is enough to track who enters, leaves
    and is renamed. For a whole novel use :func:`names_per_scene` (evidence from every scene).
    """
    mid, start = name_mentions(text)
    return _resolve(mid, start, set(mid), set(_WORD.findall(text.lower())), start)


def names_per_scene(texts: Sequence[str]) -> list[Counter[str]]:
    """:func:`capitalised_names` of each scene, deciding sentence-initial runs with the whole novel's
    evidence (a name written mid-sentence in scene 3 counts when it opens a sentence in scene 1)."""
    pairs = [name_mentions(t) for t in texts]
    known: set[str] = set()
    start_totals: Counter[str] = Counter()
    lower_vocab: set[str] = set()
    for (mid, start), t in zip(pairs, texts):
        known.update(mid)
        start_totals.update(start)
        lower_vocab.update(w for w in _WORD.findall(t) if w.islower())
    return [_resolve(mid, start, known, lower_vocab, start_totals) for mid, start in pairs]


def name_words(name: str) -> list[str]:
    """The words of a name that identify it: 'Captain Ahab' -> ['Ahab'], 'the Bishop' -> ['Bishop'];
    none for a description ('the narrator', 'two soldiers')."""
    return [
        w
        for w in re.findall(r"[A-ZÀ-Þ][\w'’-]+", name)
        if w.lower().strip("'’") not in NOT_NAMES and w.lower() not in TITLES
    ]
