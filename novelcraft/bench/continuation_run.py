"""``run_continuation_bench``: the models of a ``kind: bench_continuation`` recipe on held-out records.

Writes ``OUTPUT_DIR/NAME/results.json`` (every item's scores and each model's summary), ``report.md`` and
``stats.json``. The scorer (perplexity) and the embedder (progress) load once; each model's engine is built,
used for all items in one batch and closed before the next.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NovelcraftError, setup_hint
from ..io import atomic_write_json, atomic_write_text
from ..llm.types import LLMRequest
from ..reasoning_format import continuation_messages, length_phrase, parse_reasoned, prompt_parts
from ..sentences import sentence_count
from ..stats import ItemStats, RunStats
from .continuation import (
    BenchModel,
    ContinuationBenchRecipe,
    ItemScore,
    ModelSummary,
    progress_ratio,
    summarize,
    text_scores,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..llm.types import Engine

log = logging.getLogger(__name__)

#: the labels the scorer sees around the texts (plain text: any causal LM can score it).
CONTEXT_LABEL = "Story so far:\n"
PLAN_LABEL = "\n\nThe author's plan for what comes next:\n"
CONTINUATION_LABEL = "\n\nContinuation:\n"


@dataclass(frozen=True)
class HeldOut:
    """One held-out record: its context, guidance, the author's continuation and the data set's reasoning."""

    record_id: str
    context: str
    guidance: str | None
    gold: str
    reasoning: str


def load_held_out(path: str | Path, limit: int | None = None) -> list[HeldOut]:
    """The records of a continuation JSONL (ids from its ``.meta.jsonl`` when present)."""
    path = Path(path)
    try:
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, ValueError) as exc:
        raise NovelcraftError(
            f"cannot read the held-out records ({type(exc).__name__})", path=path, step="bench"
        ) from None
    meta_path = path.with_name(path.name.removesuffix(".jsonl") + ".meta.jsonl")
    ids = (
        [json.loads(x)["record_id"] for x in meta_path.read_text(encoding="utf-8").splitlines() if x.strip()]
        if meta_path.is_file()
        else [f"record {i}" for i in range(1, len(rows) + 1)]
    )
    out = []
    for rid, row in zip(ids, rows[:limit] if limit else rows):
        user = next(m["content"] for m in row["messages"] if m["role"] == "user")
        context, guidance = prompt_parts(user)
        parsed = parse_reasoned(row["messages"][-1]["content"])
        out.append(HeldOut(rid, context, guidance, parsed.answer, parsed.reasoning))
    if not out:
        raise NovelcraftError("no held-out records", path=path, step="bench")
    return out


class PerplexityScorer:
    """Mean negative log-likelihood of a text after a prefix, under a local causal LM (transformers)."""

    def __init__(self, model: str, *, dtype: str = "float32", threads: int = 1, max_context_tokens: int = 1024):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise NovelcraftError(
                f"the scorer needs torch and transformers: {setup_hint('dev,llm')}", step="bench"
            ) from None
        from ..llm.backends.transformers import resolve_model_path

        torch.set_num_threads(threads)
        path = resolve_model_path(model)
        self.name = model
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), local_files_only=True)
        self.model.eval()
        self.max_context_tokens = max_context_tokens

    def _tail(self, text: str) -> str:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return (
            text if len(ids) <= self.max_context_tokens else str(self.tokenizer.decode(ids[-self.max_context_tokens :]))
        )

    def nll(self, context: str, target: str, reasoning: str | None = None) -> float:
        """Mean NLL per token of ``target`` after the context (and the reasoning as the author's plan)."""
        prefix = CONTEXT_LABEL + self._tail(context) + (PLAN_LABEL + reasoning.strip() if reasoning else "")
        prefix += CONTINUATION_LABEL
        p_ids = self.tokenizer(prefix, add_special_tokens=False).input_ids
        t_ids = self.tokenizer(target, add_special_tokens=False).input_ids
        ids = self.torch.tensor([p_ids + t_ids])
        with self.torch.no_grad():
            logits = self.model(ids).logits[0, len(p_ids) - 1 : -1].float()
        logp = self.torch.log_softmax(logits, dim=-1)
        picked = logp.gather(1, self.torch.tensor(t_ids)[:, None])[:, 0]
        return float(-picked.mean())

    def gain(self, context: str, gold: str, reasoning: str) -> float | None:
        """``log PPL(gold | context) - log PPL(gold | context, reasoning)`` (None without a reasoning)."""
        if not reasoning.strip():
            return None
        return self.nll(context, gold) - self.nll(context, gold, reasoning)

    def close(self) -> None:
        """Free the model."""
        del self.model


def _answers(engine: Engine, model: BenchModel, items: Sequence[HeldOut]) -> list[Any]:
    requests = []
    for it in items:
        length = length_phrase(sentence_count(it.gold)) if model.format == "chat" else None
        msgs = continuation_messages(model.format, it.context, guidance=it.guidance, length=length)
        requests.append(
            LLMRequest(key=it.record_id, messages=tuple(m.model_dump() for m in msgs), max_tokens=model.max_tokens)
        )
    return engine.generate(requests)


def score_model(
    name: str,
    items: Sequence[HeldOut],
    answers: Sequence[Any],
    *,
    scorer: PerplexityScorer | None,
    embed: Callable[[list[str]], Any] | None,
    language: str = "en",
) -> list[ItemScore]:
    """Scores of one model's answers (``answers``: LLM responses in item order)."""
    from .embed import cosine

    scores = []
    for it, resp in zip(items, answers):
        if resp.error is not None:
            failed = {"sentences": 0, "gold_sentences": 0, "words": 0, "gold_words": 0, "repetition": 0.0}
            scores.append(
                ItemScore(record_id=it.record_id, clean_format=False, context_copy=0.0, error=resp.error, **failed)
            )
            continue
        parsed = parse_reasoned(resp.text)
        answer = parsed.answer
        n, g, ratio, rep, copy = text_scores(answer, it.gold, it.context, language)
        progress = None
        if embed is not None and answer.strip():
            ctx, gen, gold = embed([it.context, answer, it.gold])
            progress = progress_ratio(1 - cosine(gen, ctx), 1 - cosine(gold, ctx))
        gain = scorer.gain(it.context, it.gold, parsed.reasoning) if scorer is not None else None
        scores.append(
            ItemScore(
                record_id=it.record_id,
                clean_format=parsed.clean,
                repairs=list(parsed.repairs),
                sentences=n,
                gold_sentences=g,
                words=len(answer.split()),
                gold_words=len(it.gold.split()),
                length_ratio=ratio,
                repetition=rep,
                context_copy=copy,
                progress=progress,
                reasoning_gain=gain,
                seconds=resp.seconds,
                error=None if answer.strip() else "no continuation in the answer",
            )  # fmt: skip
        )
    return scores


def run_continuation_bench(
    recipe: ContinuationBenchRecipe, *, engines: dict[str, Engine] | None = None
) -> tuple[RunStats, dict[str, Any]]:
    """Run every model of ``recipe`` on its held-out records; write results.json, report.md, stats.json."""
    t0 = time.perf_counter()
    items = load_held_out(recipe.data, recipe.max_items)
    scorer = None
    if recipe.scorer.enabled:
        s = recipe.scorer
        scorer = PerplexityScorer(s.model, dtype=s.dtype, threads=s.threads, max_context_tokens=s.max_context_tokens)
    embed = None
    if recipe.embedder != "none":
        from .embed import load_embedder

        embedder = load_embedder(recipe.embedder)
        embed = embedder.embed
    results: dict[str, Any] = {"data": recipe.data, "items": len(items), "models": {}, "summaries": []}
    summaries: list[ModelSummary] = []
    if scorer is not None:  # the data set's own reasoning, as a reference for the gain
        ref = [scorer.gain(it.context, it.gold, it.reasoning) for it in items]
        vals = [g for g in ref if g is not None]
        results["dataset_reasoning_gain_mean"] = sum(vals) / len(vals) if vals else None
    for model in recipe.models:
        engine = (engines or {}).get(model.name)
        own = engine is None
        if engine is None:
            from ..llm.factory import make_engine

            engine = make_engine(model.llm)
        try:
            answers = _answers(engine, model, items)
        finally:
            if own:
                engine.close()
        scores = score_model(model.name, items, answers, scorer=scorer, embed=embed, language=recipe.language)
        results["models"][model.name] = [s.model_dump(mode="json") for s in scores]
        summaries.append(summarize(model.name, scores))
    results["summaries"] = [s.model_dump(mode="json") for s in summaries]
    if scorer is not None:
        scorer.close()
    run_dir = recipe.run_dir
    atomic_write_json(run_dir / "results.json", results)
    atomic_write_text(
        run_dir / "report.md", render_report(recipe, summaries, results.get("dataset_reasoning_gain_mean"))
    )
    stats = RunStats(
        command="bench-continuation",
        name=recipe.name,
        run_dir=str(run_dir),
        seconds=round(time.perf_counter() - t0, 3),
        items=[
            ItemStats(
                id=s.name,
                counts={"items": s.items, "failed": s.failed},
                status="failed" if s.failed == s.items else "ok",
                error=f"{s.name}: every answer failed" if s.failed == s.items else None,
            )
            for s in summaries
        ],  # fmt: skip
        notes=[_line(s) for s in summaries],
        details={"report": str(run_dir / "report.md")},
    )
    stats.write(run_dir)
    return stats, results


def _f(x: float | None, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.0f}%" if pct else f"{x:.3f}"


def _line(s: ModelSummary) -> str:
    return (
        f"{s.name}: {s.items - s.failed}/{s.items} answered, format {_f(s.clean_format, True)}, length x"
        f"{_f(s.length_ratio_median)}, repetition {_f(s.repetition)}, progress {_f(s.progress_median)}, "
        f"reasoning gain {_f(s.reasoning_gain_mean)} nats/token"
    )


def render_report(recipe: ContinuationBenchRecipe, summaries: Sequence[ModelSummary], reference: float | None) -> str:
    """``report.md``: one row per model."""
    lines = [
        f"# {recipe.name}: reasoning continuation on held-out chunks",
        "",
        f"Held-out records: `{recipe.data}`; scorer: `{recipe.scorer.model if recipe.scorer.enabled else 'off'}`; "
        f"embedder: `{recipe.embedder}`. Judge-free: format = well-formed tags; length = sentences written / "
        "the author's (median; |log| error mean); repetition = repeated word 4-grams; copy = 8-grams from the "
        "context; progress = distance from the context relative to the author's (median); reasoning gain = "
        "log PPL(gold | context) - log PPL(gold | context, reasoning), nats per token (mean; share > 0).",
        "",
        "| model | answered | format | length | length error | repetition | copy | progress | reasoning gain | helps |",
        "| --- |" + " ---: |" * 9,
    ]
    for s in summaries:
        lines.append(
            f"| {s.name} | {s.items - s.failed}/{s.items} | {_f(s.clean_format, True)} | {_f(s.length_ratio_median)} | "
            f"{_f(s.length_log_error)} | {_f(s.repetition)} | {_f(s.context_copy)} | {_f(s.progress_median)} | "
            f"{_f(s.reasoning_gain_mean)} | {_f(s.reasoning_helps, True)} |"
        )
    if reference is not None:
        lines += ["", f"The data set's own (teacher) reasoning: gain {_f(reference)} nats/token."]
    return "\n".join(lines) + "\n"
