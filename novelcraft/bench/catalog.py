"""The catalogue of novel-level metrics: key, label, which way is better, whether it has a progress curve,
and the per-scene value behind each curve (what :mod:`~novelcraft.bench.score` computes and the report shows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower", "neutral"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the report: its key, label, which direction is better, whether it has a curve, and format."""

    key: str
    label: str
    better: Better
    curve: bool
    description: str
    fmt: str = "{:.3f}"


#: every metric of a report, in the order of its tables.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("scenes", "scenes", "neutral", False, "number of narrative scenes", "{:.0f}"),
    MetricSpec("words", "words", "neutral", False, "words in all scenes", "{:.0f}"),
    MetricSpec("scene_words", "words per scene", "neutral", True, "mean words per scene", "{:.0f}"),
    MetricSpec(
        "length_score",
        "length score S_l",
        "higher",
        True,
        "LongBench-Write length score vs the scene's target_words (0-100)",
        "{:.1f}",
    ),
    MetricSpec(
        "rep4",
        "seq-rep-4 within scene",
        "lower",
        True,
        "share of a scene's 4-grams repeating an earlier 4-gram of the same scene",
    ),
    MetricSpec(
        "cross_rep5",
        "5-gram reuse across scenes",
        "lower",
        True,
        "share of a scene's 5-grams already used in an earlier scene",
    ),
    MetricSpec(
        "distinct1",
        "distinct-1 (500-word windows)",
        "higher",
        True,
        "unique words / words, mean over 500-word windows (shorter scenes: whole scene)",
    ),
    MetricSpec(
        "distinct2",
        "distinct-2 (500-word windows)",
        "higher",
        True,
        "unique bigrams / bigrams, mean over 500-word windows",
    ),
    MetricSpec(
        "slop_per_1k",
        "cliché hits / 1k words",
        "lower",
        True,
        "matches of the packaged cliché list per 1,000 words",
        "{:.2f}",
    ),
    MetricSpec("self_similarity", "self-similarity", "lower", False, "mean embedding cosine over all pairs of scenes"),
    MetricSpec(
        "max_earlier_similarity",
        "max similarity to an earlier scene",
        "lower",
        True,
        "embedding cosine to the most similar earlier, non-adjacent scene",
    ),
    MetricSpec(
        "prev_similarity",
        "similarity to previous scene",
        "higher",
        True,
        "embedding cosine of consecutive scenes (local coherence)",
    ),
    MetricSpec(
        "goal_similarity", "goal adherence (cosine)", "higher", True, "embedding cosine of scene goal and scene"
    ),
    MetricSpec(
        "new_names_per_1k",
        "new names / 1k words",
        "neutral",
        True,
        "names seen for the first time per 1,000 words",
        "{:.2f}",
    ),
    MetricSpec("main_names", "main names", "neutral", False, "names with 3+ mentions in 2+ scenes", "{:.0f}"),
    MetricSpec(
        "dropped_names",
        "dropped main names",
        "lower",
        False,
        "main names last seen before the middle of the novel",
        "{:.0f}",
    ),
    MetricSpec(
        "name_drift",
        "name drift pairs",
        "lower",
        False,
        "pairs of near-identical names (edit distance 1-2), e.g. a renamed character",
        "{:.0f}",
    ),
    MetricSpec(
        "ref_overlap",
        "8-gram overlap with references",
        "lower",
        True,
        "share of a scene's word 8-grams found in the reference books",
        "{:.4f}",
    ),
    MetricSpec(
        "ref_longest_run",
        "longest run copied from references",
        "lower",
        False,
        "longest run of words shared with a reference book (0 if under 8)",
        "{:.0f}",
    ),
    MetricSpec(
        "summary_fields_present", "summary fields present", "higher", True, "share of running-summary fields found"
    ),
    MetricSpec(
        "summary_budget_compliance",
        "summary budget compliance",
        "higher",
        True,
        "share of summary fields within their word budget",
    ),
    MetricSpec(
        "summary_entity_recall",
        "summary entity recall",
        "higher",
        True,
        "share of a scene's salient names that its summary names",
    ),
    MetricSpec(
        "summary_entity_hallucination",
        "summary invented names",
        "lower",
        True,
        "share of names in a summary found in no scene so far",
    ),
    MetricSpec(
        "summary_keyword_recall",
        "summary keyword recall",
        "higher",
        True,
        "share of a scene's top keywords found in its summary",
    ),
    MetricSpec(
        "memory_churn",
        "global memory churn",
        "neutral",
        True,
        "1 - Jaccard of the global fields of consecutive summaries",
    ),
    MetricSpec(
        "memory_retention",
        "global memory retention",
        "higher",
        True,
        "share of the 5 most-mentioned names so far named in the global fields",
    ),
)
METRIC_BY_KEY = {s.key: s for s in METRICS}

#: per-scene values behind each curve (novel-level key -> SceneScores attribute)
CURVE_SOURCES = {
    "scene_words": "words",
    "length_score": "length_score",
    "rep4": "rep4",
    "cross_rep5": "cross_rep5",
    "distinct1": "distinct1",
    "distinct2": "distinct2",
    "slop_per_1k": "slop_per_1k",
    "max_earlier_similarity": "max_earlier_similarity",
    "prev_similarity": "prev_similarity",
    "goal_similarity": "goal_similarity",
    "new_names_per_1k": "new_names_per_1k",
    "ref_overlap": "ref_overlap",
    "summary_fields_present": "summary_fields_present",
    "summary_budget_compliance": "summary_budget_compliance",
    "summary_entity_recall": "summary_entity_recall",
    "summary_entity_hallucination": "summary_entity_hallucination",
    "summary_keyword_recall": "summary_keyword_recall",
    "memory_churn": "memory_churn",
    "memory_retention": "memory_retention",
}
