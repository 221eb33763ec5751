"""The data card (``README.md``) of a compiled data set: deterministic Markdown, no dates or timings."""

from __future__ import annotations

from .. import __version__
from ..recipes import dump_recipe
from .recipe import CompileRecipe
from .stats import HISTOGRAM_BIN, SPLITS, CompileStats

HF_DIR = "hf_dataset"
DATA_CARD = "README.md"


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def render_data_card(stats: CompileStats, recipe: CompileRecipe) -> str:
    """The data set's README.md (Markdown; deterministic: no dates, no timings)."""
    s = stats
    total_records = s.records["train"] + s.records["validation"]
    lines = [
        f"# {s.name}: novelcraft training set",
        "",
        f"ChatML records for fine-tuning a novel writer: {s.records['train']} train and {s.records['validation']} "
        f"validation records from {len(s.books)} book{'s' * (len(s.books) != 1)}, compiled by novelcraft "
        f'{__version__}. Each record is `{{"messages": [system, user, assistant]}}`: the system turn is the author '
        "persona, the user turn holds `<world_context>`, `<running_summary>` (first line `NOVEL PROGRESS: XX%`) and "
        "`<scene_instruction>`, and the assistant turn is the scene text. Token counts are exact, with "
        f"`{s.tokenizer}`, of each record rendered with the {s.chat_template} template; the record budget is "
        f"{s.max_tokens} tokens.",
        "",
        "## Files",
        "",
        "| file | content |",
        "| --- | --- |",
    ]
    present = [split for split in SPLITS if s.records[split]]
    if "jsonl" in recipe.export.formats:
        for split in present:
            lines.append(f"| `{split}.jsonl` | {s.records[split]} records |")
    if present:
        names = ", ".join(f"`{split}.meta.jsonl`" for split in present)
        lines.append(
            f"| {names} | per record: book, scene, reference flag, position, progress, token counts "
            "(same order as the records) |"
        )
    if "hf" in recipe.export.formats:
        lines.append(f"| `{HF_DIR}/` | `datasets.DatasetDict` (`load_from_disk`): messages plus the metadata columns |")
    lines += [
        "| `stats.json` | these statistics as JSON, every dropped scene |",
        "| `recipe.resolved.yaml` | the recipe below |",
        "",
    ]

    lines += [
        "## Books",
        "",
        "| book | title | author | narrative scenes | reference scenes | train | validation | dropped |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in s.books:
        lines.append(
            f"| `{b.book_id}` | {b.title} | {b.author} | {b.narrative_scenes} | {b.reference_scenes} | {b.train} | "
            f"{b.validation} | {b.dropped} |"
        )
    lines.append("")

    lines += ["## Tokens per record", ""]
    if total_records:
        lines += ["| part | min | median | p95 | max | mean | total |", "| --- |" + " ---: |" * 6]
        labels = {
            "record": "whole record (chat template)",
            "scene": "scene (assistant)",
            "context": "context (everything else)",
            "system": "system prompt",
            "world_context": "world context",
            "running_summary": "running summary (with progress line)",
            "instruction": "scene instruction",
        }
        for key, label in labels.items():
            t = s.tokens[key]
            lines.append(
                f"| {label} | {_fmt(t.min)} | {_fmt(t.median)} | {_fmt(t.p95)} | {_fmt(t.max)} | {_fmt(t.mean)} | "
                f"{_fmt(t.total)} |"
            )
        if s.narrative_context_ratio:
            lines += [
                "",
                f"Narrative:context ratio (scene tokens ÷ context tokens, all records): "
                f"**{s.narrative_context_ratio:.2f}:1** (the design aims at 2:1 to 3:1).",
            ]
        if s.over_section_budget:
            parts = ", ".join(f"{k} {v}" for k, v in s.over_section_budget.items())
            lines += ["", f"Records over a section budget (kept, the record still fits): {parts}."]
    else:
        lines.append("No records.")
    lines += [
        "",
        f"## Budget histogram (tokens per record, bins of {HISTOGRAM_BIN})",
        "",
        "| tokens | records | |",
        "| --- | ---: | --- |",
    ]
    peak = max((n for _, n in s.histogram), default=0)
    for label, n in s.histogram:
        bar = "█" * (round(30 * n / peak) if peak else 0)
        lines.append(f"| {label} | {n} | {bar} |")
    lines.append("")

    lines += ["## Split", ""]
    sp = s.split
    how = sp.describe()
    lines.append(f"{how[0].upper()}{how[1:]}, seed {sp.seed}.")
    if sp.validation_books:
        lines.append(f"Validation books: {', '.join(f'`{b}`' for b in sp.validation_books)}.")
    if sp.effective_by == "scene" and sp.validation_fraction > 0:
        lines.append(
            "Validation scenes come from the same books as training scenes: the loss measures fit to "
            "those books rather than generalization to unseen ones."
        )
    if sp.note:
        lines.append(f"Note: {sp.note}.")
    lines.append("")

    lines += ["## Flagged LLM items", ""]
    if not s.flagged:
        lines.append("None: every world context, summary and instruction in these records passed its gates and budget.")
    else:
        lines.append(
            f"Records kept that hold an LLM item flagged at prep (it never passed its quality gates or budget, or "
            f"a fallback replaced it), by stage: {', '.join(f'{k} {v}' for k, v in sorted(s.flagged.items()))}. "
            "Each record's flags are in the `*.meta.jsonl` sidecar; `flagged: drop` in the compile recipe "
            "leaves them out."
        )
    lines.append("")
    lines += ["## Dropped scenes", ""]
    if not s.dropped and not s.reference_scenes_dropped:
        lines.append("None.")
    if s.reference_scenes_dropped:
        lines.append(
            f"{s.reference_scenes_dropped} reference scenes (foreword, notes, ...) left out by the recipe "
            "(`reference_scenes: drop`)."
        )
    if s.dropped:
        lines += ["", "| book | scene | reason |", "| --- | ---: | --- |"]
        for d in s.dropped[:50]:
            lines.append(f"| `{d.book_id}` | {d.scene_id} | {d.detail} |")
        if len(s.dropped) > 50:
            lines.append(f"| … | | {len(s.dropped) - 50} more in stats.json |")
    lines += ["", "## Recipe", "", "```yaml", dump_recipe(recipe, outputs_only=True).rstrip("\n"), "```", ""]
    return "\n".join(lines)
