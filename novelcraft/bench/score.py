"""Scoring one novel: every judge-free metric per scene, as a curve over the novel and as one figure.

:func:`score_novel` is pure apart from the injected embedder: it takes a :class:`~novelcraft.bench.novel.Novel`
and returns :class:`NovelScores`. :data:`METRICS` describes every novel-level figure (label, which way
is better, whether it has a progress curve) for the report.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

from pydantic import Field

from ..models import Record
from ..names import names_per_scene
from . import metrics as m
from .catalog import CURVE_SOURCES
from .embed import Embedder
from .memory import memory_drift, summary_quality
from .novel import Novel

log = logging.getLogger(__name__)


class SceneScores(Record):
    """The judge-free metrics of one scene."""

    index: int
    words: int
    target_words: int | None = None
    length_score: float | None = None
    rep4: float
    cross_rep5: float
    distinct1: float
    distinct2: float
    slop_per_1k: float
    new_names: int
    new_names_per_1k: float
    prev_similarity: float | None = None
    max_earlier_similarity: float | None = None
    goal_similarity: float | None = None
    ref_overlap: float | None = None
    ref_longest_run: int | None = None
    summary_fields_present: float | None = None
    summary_budget_compliance: float | None = None
    summary_over_budget: list[str] = Field(default_factory=list)
    summary_entity_recall: float | None = None
    summary_entity_hallucination: float | None = None
    summary_keyword_recall: float | None = None
    memory_churn: float | None = None
    memory_retention: float | None = None


class NameInfo(Record):
    """A character name: how often it is mentioned and in which scenes first and last."""

    name: str
    mentions: int
    first_scene: int
    last_scene: int


class EntityReport(Record):
    """The main names of a novel, the names that vanish and pairs of names that look like one drifting."""

    main: list[NameInfo] = Field(default_factory=list, description="most mentioned main names (top 25)")
    dropped: list[str] = Field(default_factory=list)
    drift_pairs: list[tuple[str, str]] = Field(default_factory=list)


class NovelScores(Record):
    """All judge-free figures of one novel."""

    title: str
    source: str
    path: str | None = None
    embedder: str | None = None
    references: list[str] = Field(default_factory=list)
    bins: int
    summary: dict[str, float | None]
    curves: dict[str, list[float | None]]
    scenes: list[SceneScores]
    entities: EntityReport
    slop_top: list[tuple[str, int]] = Field(default_factory=list)
    judge: dict[str, float] | None = None
    seconds: float = 0.0


def _scene_distinct(tokens: Sequence[str], n: int, window: int = 500) -> float:
    """distinct-n of a scene over 500-word windows (the whole scene when it is shorter), so that scene
    values and the novel figure are on one length-independent scale."""
    w = m.windowed_distinct(tokens, n, window)
    return w if w is not None else m.distinct_n(tokens, n)


def score_novel(
    novel: Novel,
    *,
    references: m.ReferenceIndex | None = None,
    embedder: Embedder | None = None,
    slop: m.SlopList | None = None,
    bins: int = 10,
) -> NovelScores:
    """Score ``novel`` with every judge-free metric.

    ``references`` (a :class:`~novelcraft.bench.metrics.ReferenceIndex`, e.g. of the training books)
    enables the regurgitation audit; ``embedder`` enables goal adherence, coherence and self-similarity
    (``None`` leaves those figures empty); ``slop`` defaults to the packaged cliché list.
    """
    t0 = time.perf_counter()
    slop = slop or m.default_slop_list()
    scenes = novel.scenes
    texts = [s.text for s in scenes]
    toks = [m.words(t) for t in texts]
    nwords = [len(t) for t in toks]
    cross = m.cross_scene_repetition(toks, 5)
    names = names_per_scene(texts)
    track = m.track_entities(names)

    sims = None
    goal_sims: list[float | None] = [None] * len(scenes)
    if embedder is not None:
        goals = [(i, s.goal) for i, s in enumerate(scenes) if s.goal]
        vecs = embedder.embed(texts + [g for _, g in goals])
        sv = vecs[: len(texts)]
        sims = sv @ sv.T
        for k, (i, _) in enumerate(goals):
            goal_sims[i] = float(vecs[len(texts) + k] @ sv[i])

    churn, retention = memory_drift([s.summary for s in scenes], texts)
    background: Counter[str] = Counter(w for t in toks for w in t)
    known = ""
    rows: list[SceneScores] = []
    for i, s in enumerate(scenes):
        known += "\n" + s.text
        row: dict[str, object] = {
            "index": s.index,
            "words": nwords[i],
            "target_words": s.target_words,
            "length_score": m.length_score(s.target_words, nwords[i]) if s.target_words else None,
            "rep4": m.repetition_rate(toks[i], 4),
            "cross_rep5": cross[i],
            "distinct1": _scene_distinct(toks[i], 1),
            "distinct2": _scene_distinct(toks[i], 2),
            "slop_per_1k": m.slop_index(toks[i], slop),
            "new_names": track.introduced_per_scene[i],
            "new_names_per_1k": 1000.0 * track.introduced_per_scene[i] / nwords[i] if nwords[i] else 0.0,
            "goal_similarity": goal_sims[i],
            "memory_churn": churn[i],
            "memory_retention": retention[i],
        }
        if sims is not None:
            row["prev_similarity"] = float(sims[i, i - 1]) if i > 0 else None
            row["max_earlier_similarity"] = float(sims[i, : i - 1].max()) if i > 1 else None
        if references is not None:
            share, run = m.reference_overlap(toks[i], references)
            row["ref_overlap"], row["ref_longest_run"] = share, run
        if s.summary:
            q = summary_quality(s.summary, s.text, known_text=known, background=background)
            row.update(
                summary_fields_present=q.fields_present,
                summary_budget_compliance=q.budget_compliance,
                summary_over_budget=q.over_budget,
                summary_entity_recall=q.entity_recall,
                summary_entity_hallucination=q.entity_hallucination,
                summary_keyword_recall=q.keyword_recall,
            )
        rows.append(SceneScores.model_validate(row))

    all_toks = [w for t in toks for w in t]
    total_words = len(all_toks)
    summary: dict[str, float | None] = {
        "scenes": float(len(scenes)),
        "words": float(total_words),
        "scene_words": total_words / len(scenes),
        "distinct1": m.windowed_distinct(all_toks, 1, 500),
        "distinct2": m.windowed_distinct(all_toks, 2, 500),
        "slop_per_1k": m.slop_index(all_toks, slop),
        "new_names_per_1k": 1000.0 * len(track.first_scene) / total_words if total_words else 0.0,
        "main_names": float(len(track.main)),
        "dropped_names": float(len(track.dropped)),
        "name_drift": float(len(track.drift_pairs)),
        "self_similarity": None,
        "ref_longest_run": None,
    }
    for key in (
        "length_score",
        "rep4",
        "cross_rep5",
        "max_earlier_similarity",
        "prev_similarity",
        "goal_similarity",
        "ref_overlap",
        "summary_fields_present",
        "summary_budget_compliance",
        "summary_entity_recall",
        "summary_entity_hallucination",
        "summary_keyword_recall",
        "memory_churn",
        "memory_retention",
    ):
        summary[key] = m.mean(getattr(r, key) for r in rows)
    if sims is not None and len(scenes) > 1:
        n = len(scenes)
        summary["self_similarity"] = float((sims.sum() - sims.trace()) / (n * (n - 1)))
    if references is not None:
        summary["ref_longest_run"] = float(max((r.ref_longest_run or 0) for r in rows))

    curves: dict[str, list[float | None]] = {}
    for key, attr in CURVE_SOURCES.items():
        vals = [getattr(r, attr) for r in rows]
        if any(v is not None for v in vals):
            curves[key] = m.progress_bins(nwords, [float(v) if v is not None else None for v in vals], bins)

    slop_counts: Counter[str] = m.slop_hits(all_toks, slop)
    entities = EntityReport(
        main=[
            NameInfo(
                name=nm, mentions=track.mentions[nm], first_scene=track.first_scene[nm], last_scene=track.last_scene[nm]
            )
            for nm in track.main[:25]
        ],
        dropped=track.dropped,
        drift_pairs=track.drift_pairs,
    )
    out = NovelScores(
        title=novel.title,
        source=novel.source,
        path=novel.path,
        embedder=getattr(embedder, "name", None) if embedder is not None else None,
        references=list(references.names) if references is not None else [],
        bins=bins,
        summary=summary,
        curves=curves,
        scenes=rows,
        entities=entities,
        slop_top=slop_counts.most_common(15),
        seconds=0.0,
    )
    out.seconds = round(time.perf_counter() - t0, 3)
    log.info("scored %s: %d scenes, %d words in %.1f s", novel.title, len(scenes), total_words, out.seconds)
    return out


def reference_index_for(novels: Sequence[Novel], n: int = 8) -> m.ReferenceIndex:
    """A :class:`~novelcraft.bench.metrics.ReferenceIndex` of whole novels (e.g. the training books)."""
    return m.ReferenceIndex.build(
        ["\n".join(s.text for s in nv.scenes) for nv in novels], n=n, names=[nv.title for nv in novels]
    )
