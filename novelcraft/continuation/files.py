"""Files of a reasoning-continuation data set: JSONL splits and sidecars, the HF export, the data card."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..datafiles import save_hf_dataset, write_split_files
from ..io import atomic_write_text
from ..recipes import dump_recipe
from .recipe import ContinuationRecipe
from .records import SPLITS, Built, ContinuationMeta, ContinuationStats

#: the data card and the HF export folder of a data set.
DATA_CARD = "README.md"
HF_DIR = "hf_dataset"


def export_hf(built: Built, path: str | Path) -> Path:
    """Save the splits as a ``datasets.DatasetDict`` (``messages`` plus the sidecar columns), atomically."""
    rows = {s: [{**x.record.as_dict(), **x.meta.model_dump(mode="json")} for x in getattr(built, s)] for s in SPLITS}
    return save_hf_dataset(rows, ContinuationMeta, Path(path))


def expected_files(recipe: ContinuationRecipe, stats: ContinuationStats) -> list[str]:
    """The files of a finished data set (relative to its folder), for the manifest."""
    files = []
    for split in SPLITS:
        if stats.records[split]:
            files.append(f"{split}.meta.jsonl")
            if "jsonl" in recipe.export.formats:
                files.append(f"{split}.jsonl")
    if "hf" in recipe.export.formats:
        files.append(HF_DIR)
    if recipe.export.data_card:
        files.append(DATA_CARD)
    return files


def write_dataset(built: Built, recipe: ContinuationRecipe, run_dir: str | Path) -> list[Path]:
    """Write the data files of ``built`` under ``run_dir`` (atomically; a split left empty loses its old files)."""
    run_dir = Path(run_dir)
    splits = {s: ([x.record.as_dict() for x in getattr(built, s)], [x.meta for x in getattr(built, s)]) for s in SPLITS}
    written = write_split_files(run_dir, splits, jsonl="jsonl" in recipe.export.formats)
    if "hf" in recipe.export.formats:
        written.append(export_hf(built, run_dir / HF_DIR))
    if recipe.export.data_card:
        written.append(atomic_write_text(run_dir / DATA_CARD, render_card(built.stats, recipe)))
    return written


def render_card(s: ContinuationStats, recipe: ContinuationRecipe) -> str:
    """The data card (Markdown; deterministic: no dates, no timings)."""
    shape = (
        "`[user, assistant]`: the user turn is the published CRA-v1 prompt (`### System:`, `### Task:`, "
        "`### Context:`; guided records `### Guidance:`), the assistant turn "
        "`<reasoning>…</reasoning><answer>…</answer>`"
        if s.format == "cra"
        else "`[system, user, assistant]`: a writer's-assistant system turn, the task with `<context>` (and "
        "`<guidance>`) in the user turn, and `<reasoning>` then `<answer>` on their own lines in the assistant turn"
    )
    lines = [
        f"# {s.name}: novelcraft reasoning-continuation set",
        "",
        f"{s.records['train']} train and {s.records['validation']} validation records (novelcraft {__version__}) for "
        "fine-tuning a writer's assistant that first reasons about how the story flows, what the characters want "
        "and how they will interact, then continues the story. The context and the answer are exact slices of a "
        "book's chapters, cut at sentence ends (never across chapters, never from front or back matter); the "
        f"answer is the author's own continuation; the reasoning was reconstructed by `{s.teacher}`"
        + (f", guidance sentences by `{s.guidance_engine}`" if s.guided else "")
        + f". Each record is {shape}. Token counts are exact, with `{s.tokenizer}`, of each record rendered with "
        f"the {s.chat_template} template; the record budget is {s.max_tokens} tokens.",
        "",
        "## Counts",
        "",
        f"- chunks cut: {s.chunks}; kept by the record budget: {s.selected}; records: "
        f"{s.records['train'] + s.records['validation']} ({s.guided} guided, {s.flagged} flagged over the word limit)",
        f"- split: {s.split.describe()}",
        "",
        "| book | chunks | train | validation |",
        "| --- | ---: | ---: | ---: |",
    ]
    for book, n in s.books.items():
        lines.append(f"| `{book}` | {n['chunks']} | {n['train']} | {n['validation']} |")
    lines += ["", "## Tokens", "", "| part | min | median | p95 | max | mean | total |", "| --- |" + " ---: |" * 6]
    for name, t in s.tokens.items():
        lines.append(f"| {name} | {t.min} | {t.median:g} | {t.p95} | {t.max} | {t.mean:g} | {t.total} |")
    lines += ["", "## Dropped", ""]
    if not s.dropped:
        lines.append("None.")
    for d in s.dropped[:50]:
        lines.append(f"- `{d.chunk_id}`: {d.reason.replace('_', ' ')}: {d.detail}")
    if len(s.dropped) > 50:
        lines.append(f"- … {len(s.dropped) - 50} more in stats.json")
    lines += ["", "## Recipe", "", "```yaml", dump_recipe(recipe).rstrip("\n"), "```", ""]
    return "\n".join(lines)
