"""Memory quality: how faithful, how compact and how stable the running summaries of a novel are.

A running summary is the rendered :class:`~novelcraft.models.RunningSummary` written after a scene
(``- SCENE END STATE: ...`` lines). :func:`parse_summary` reads it back into fields, the word budget of
each field comes from its ``x-max-words`` schema entry, and :func:`summary_quality` scores one summary
against the scenes it covers; :func:`memory_drift` follows the global fields across the novel.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import RunningSummary
from ..names import NOT_NAMES, capitalised_names, name_mentions
from .metrics import words

#: fields that describe the novel so far (the rest describe the last scene)
GLOBAL_FIELDS = ("global_events", "unresolved_threads", "world_state", "active_characters", "global_shift")
LOCAL_FIELDS = ("scene_end_state", "emotional_beat", "immediate_tension")

#: very common words that say nothing about events
STOPWORDS = NOT_NAMES | frozenset(
    """
    said says say one two would could should like little great much many more most upon back down out up way time
    man men woman women thing things made make went go going know knew think thought felt feel seemed seem own
    also yet still even never ever again away long first last well good see saw looked look came come get got
    """.split()
)


def summary_budgets() -> dict[str, int]:
    """Field name -> word budget, from the ``x-max-words`` entries of :class:`RunningSummary`."""
    out: dict[str, int] = {}
    for name, info in RunningSummary.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        limit = extra.get("x-max-words")
        if isinstance(limit, int):  # ``_bounded`` fields; the others have no budget
            out[name] = limit
    return out


def _label(field: str) -> str:
    return field.upper().replace("_", " ")


def parse_summary(rendered: str) -> dict[str, str]:
    """Fields of a rendered running summary (label lines ``- SCENE END STATE: text``; text may continue
    on following lines). Fields missing from the text are absent from the result."""
    labels = {_label(f): f for f in RunningSummary.model_fields}
    pattern = re.compile(r"^\s*(?:[-*]\s*)?(?:##\s*)?(" + "|".join(re.escape(lab) for lab in labels) + r")\s*:\s*(.*)$")
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in rendered.splitlines():
        m = pattern.match(line)
        if m:
            current = labels[m.group(1)]
            out[current] = [m.group(2).strip()]
        elif current and line.strip() and not line.lstrip().startswith("#"):
            out[current].append(line.strip())
        elif line.lstrip().startswith("#"):
            current = None
    return {k: " ".join(v).strip() for k, v in out.items()}


@dataclass
class SummaryQuality:
    """Scores of one running summary (fractions in [0, 1]; ``None`` when not applicable)."""

    fields_present: float
    budget_compliance: float
    over_budget: list[str]
    entity_recall: float | None
    entity_hallucination: float | None
    keyword_recall: float | None
    words: int


def salient_names(text: str, min_mentions: int = 2, top: int = 8) -> list[str]:
    """The most mentioned names of a text (at least ``min_mentions`` mentions), most frequent first."""
    c = capitalised_names(text)
    return [n for n, k in c.most_common() if k >= min_mentions][:top]


def keywords(text: str, top: int = 10, background: Counter[str] | None = None) -> list[str]:
    """Content words of a text that best characterise it: frequent in the text, rarer in ``background``
    (word counts of the whole novel) - a cheap stand-in for the scene's events."""
    toks = [w for w in words(text) if len(w) > 3 and w not in STOPWORDS and "'" not in w]
    c = Counter(toks)
    if background:
        total = sum(background.values()) or 1
        scored = {w: k * (1.0 / (1.0 + 1000.0 * background.get(w, 0) / total)) for w, k in c.items() if k >= 2}
    else:
        scored = {w: float(k) for w, k in c.items() if k >= 2}
    return [w for w, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s", "ly"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def _name_in(name: str, text_lower: str) -> bool:
    return any(
        re.search(r"\b" + re.escape(part.lower()) + r"\b", text_lower)
        for part in name.split()
        if part.lower().rstrip(".") not in ("mr", "mrs", "ms", "dr", "st")
    )


def summary_quality(
    rendered: str,
    scene_text: str,
    *,
    known_text: str = "",
    background: Counter[str] | None = None,
    budgets: dict[str, int] | None = None,
) -> SummaryQuality:
    """Score one running summary written after ``scene_text``.

    * **fields_present** - share of the summary's fields found in the rendered text;
    * **budget_compliance** - share of present fields within their ``x-max-words`` budget
      (``over_budget`` names the others);
    * **entity_recall** - share of the scene's salient names (2+ mentions, top 8) that the summary names
      (any part of a multi-word name counts);
    * **entity_hallucination** - share of names in the summary (capitalised mid-sentence, or listed in
      ``active_characters``) that occur nowhere in ``known_text``
      (every scene so far, the current one included) - invented or misspelt people and places;
    * **keyword_recall** - share of the scene's top 10 keywords (:func:`keywords`, crude suffix stemming)
      found in the summary: a lexical proxy for event recall.
    """
    budgets = budgets or summary_budgets()
    fields = parse_summary(rendered)
    present = [f for f in budgets if fields.get(f)]
    over = [f for f in present if len(fields[f].split()) > budgets[f]]
    body = " ".join(fields.values()) if fields else rendered
    body_lower = body.lower()
    names = salient_names(scene_text)
    recall = sum(1 for n in names if _name_in(n, body_lower)) / len(names) if names else None
    known_lower = (known_text or scene_text).lower()
    # summaries are terse fragments whose first word is capitalised ("Storm season; no ferry"), so only
    # mid-sentence runs count as names - plus everything in active_characters, which is a list of names
    mid, _ = name_mentions(body)
    listed_mid, listed_start = name_mentions(fields.get("active_characters", ""))
    summary_names = [n for n in {**mid, **listed_mid, **listed_start} if n.split()[-1].lower() not in NOT_NAMES]
    halluc = (
        sum(1 for n in summary_names if not _name_in(n, known_lower)) / len(summary_names) if summary_names else None
    )
    kws = keywords(scene_text, background=background)
    body_stems = {_stem(w) for w in words(body)}
    kw_recall = sum(1 for k in kws if _stem(k) in body_stems) / len(kws) if kws else None
    return SummaryQuality(
        fields_present=len(present) / len(budgets) if budgets else 0.0,
        budget_compliance=(len(present) - len(over)) / len(present) if present else 0.0,
        over_budget=over,
        entity_recall=recall,
        entity_hallucination=halluc,
        keyword_recall=kw_recall,
        words=len(body.split()),
    )


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def memory_drift(
    summaries: Sequence[str | None], scene_texts: Sequence[str], *, top_names: int = 5
) -> tuple[list[float | None], list[float | None]]:
    """Two per-scene curves of the global memory, ``None`` where a scene has no summary.

    * **global churn** - ``1 - Jaccard`` of the content-word sets of the global fields of this summary and
      the previous one: near 1 means the global state is rewritten every scene (drift), near 0 that it is
      never updated (stale);
    * **global retention** - share of the ``top_names`` most-mentioned names of the novel so far (by
      mentions in all scenes up to this one) that the global fields still name.
    """
    churn: list[float | None] = []
    retention: list[float | None] = []
    prev: set[str] | None = None
    totals: Counter[str] = Counter()
    for summary, text in zip(summaries, scene_texts):
        totals.update(capitalised_names(text))
        if not summary:
            churn.append(None)
            retention.append(None)
            continue
        fields = parse_summary(summary)
        glob = " ".join(fields.get(f, "") for f in GLOBAL_FIELDS)
        cur = {w for w in words(glob) if w not in STOPWORDS and len(w) > 2}
        churn.append(None if prev is None else 1.0 - _jaccard(prev, cur))
        prev = cur
        top = [n for n, _ in totals.most_common(top_names)]
        gl = glob.lower()
        retention.append(sum(1 for n in top if _name_in(n, gl)) / len(top) if top else None)
    return churn, retention
