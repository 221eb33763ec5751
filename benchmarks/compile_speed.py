"""Throughput of the training-set compiler and of data-set validation, and the budget statistics of the
compiled set next to the peer data set's.

Run from the repository root::

    python benchmarks/compile_speed.py [--books data/books/*.epub] [--repeat N] [--json OUT] [--peer FILE]

What it does (every number printed is measured on the machine it runs on):

1. Prepares the sample books in-process (:func:`novelcraft.book.prep_book`, ``blocks`` segmentation,
   default budgets: scenes of at most 3000 tokens), not timed.
2. Fills the fields the LLM stages will write (world context, each scene's instruction and running
   summary) with **synthetic filler text**: deterministic pseudo-words drawn from a fixed vocabulary,
   every field starting with ``SYNTHETIC``, rendered through the real pydantic models
   (:class:`~novelcraft.models.WorldContext`, :class:`~novelcraft.models.RunningSummary`,
   :class:`~novelcraft.models.Instruction`) and sized so that the rendered sections come out near
   :data:`TARGET_TOKENS` (world context 380, running summary 340, instruction 50 tokens: the peer
   data set's medians where they fit our budgets); their measured sizes are printed. The scenes are
   the books' real text.
3. Times (best of ``--repeat``): :func:`novelcraft.compile.compile_books` (prompt rendering, exact
   token counting of every record in one batch, split), writing the files
   (:func:`novelcraft.compile.write_compiled`: JSONL, sidecars, data card), and
   :func:`novelcraft.validate.validate_file` of the written JSONL with the real tokenizer (schema,
   roles, duplicates, tagged sections, token budgets) and without it (schema only). Records/s and
   tokens/s are records (or their ChatML tokens) divided by the best wall time.
4. Budget statistics of the compiled set (records, tokens per record median/p95/max, scene and context
   medians, narrative:context ratio) next to the peer data set's final JSONL (``--peer``; skipped with a
   note when the file is absent), both counted with the same tokenizer and chat template
   (:func:`novelcraft.compile.dataset_stats`).

Nothing touches the network; no thread count is forced (reported as found). The report goes to stdout
as Markdown; diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BOOKS = [str(REPO_ROOT / "data" / "books" / "*.epub")]
PEER_DIR = REPO_ROOT.parent / "shared" / "reference" / "lora-novel-craft"
DEFAULT_PEER = PEER_DIR / "json_final_Jack_London-The_Iron_Heel.jsonl"

# The benchmarks folder is on sys.path when this file runs as a script; the machine facts are prep_speed's.
from prep_speed import cpu_model, package_version  # noqa: E402

log = logging.getLogger("compile_speed")
T = TypeVar("T")

# vocabulary of the synthetic filler: plain words in a random order, so the token/word rate is that of
# English prose while the text is obviously not content
_VOCAB = (
    "the a of and to in that was his her with for on as by at from which their they night house river road "
    "city wall door window light dark cold fire iron stone letter voice hand eyes face blood silence storm "
    "mountain forest garden street crowd soldier worker master servant stranger mother father brother sister "
    "friend enemy promise secret journey memory danger hope fear anger grief pride shame courage justice power "
    "money machine engine factory market church court prison ship harbour winter summer morning evening "
    "remembers hides follows watches refuses demands escapes returns discovers betrays forgives waits listens "
    "slowly quietly suddenly bitterly gently never always still again already almost perhaps tomorrow yesterday "
    "broken hidden ancient narrow distant heavy bright trembling restless careful furious weary hungry"
).split()
#: token sizes the filler aims at (median rendered section): peer data set medians, capped by our budgets
TARGET_TOKENS = {"world_context": 380, "running_summary": 340, "instruction": 50}


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result  # type: ignore[return-value]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    sep = ["---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def synthetic(rng: random.Random, words: int) -> str:
    return " ".join(["SYNTHETIC"] + [rng.choice(_VOCAB) for _ in range(max(0, words - 1))])


def _cap(model: Any, field: str) -> int:
    extra = model.model_fields[field].json_schema_extra
    return extra["x-max-words"] if isinstance(extra, dict) else 30


def _max_chars(model: Any, field: str) -> int:
    return next(m.max_length for m in model.model_fields[field].metadata if getattr(m, "max_length", None))


class Filler:
    """Renders WorldContext / RunningSummary / Instruction objects of synthetic words, sized so that the
    rendered text is about :data:`TARGET_TOKENS` tokens (never over the models' word or length limits)."""

    def __init__(self, counter: Any, seed: int) -> None:
        self.counter = counter
        self.rng = random.Random(seed)
        self.share = {k: 0.8 for k in TARGET_TOKENS}
        for _ in range(3):  # a few proportional corrections converge on the target
            for kind, target in TARGET_TOKENS.items():
                n = statistics.median(counter.count_batch([self.render(kind) for _ in range(5)]))
                self.share[kind] = min(1.0, self.share[kind] * target / n)

    def _words(self, model: Any, field: str, share: float) -> str:
        text = synthetic(self.rng, max(1, int(_cap(model, field) * share)))
        return text[: _max_chars(model, field)].rsplit(" ", 1)[0] if len(text) > _max_chars(model, field) else text

    def render(self, kind: str) -> str:
        from novelcraft.models import Instruction, RunningSummary, WorldContext

        share = self.share[kind]
        if kind == "instruction":
            # 80 words in all: goal <= 30, the rest shared by characters, beat and constraints
            return Instruction(
                scene_goal=synthetic(self.rng, max(2, int(28 * share))),
                characters_present=[synthetic(self.rng, 2) for _ in range(3)],
                emotional_beat=synthetic(self.rng, max(2, int(8 * share))),
                constraints=synthetic(self.rng, max(2, int(30 * share))),
            ).render()
        model = WorldContext if kind == "world_context" else RunningSummary
        return model(**{f: self._words(model, f, share) for f in model.model_fields}).render()


def fill_synthetic(book: Any, filler: Filler) -> Any:
    """A copy of ``book`` whose LLM fields hold labelled synthetic filler of realistic lengths."""
    book = book.model_copy(deep=True)
    book.meta.world_context = filler.render("world_context")
    for scene in book.scenes:
        scene.running_summary = filler.render("running_summary")
        scene.instruction = filler.render("instruction")
    return book


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--books", nargs="+", default=DEFAULT_BOOKS, help="EPUB files or glob patterns")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic filler")
    ap.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="peer data set JSONL to compare with")
    ap.add_argument("--json", type=Path, help="write every number as JSON here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )

    import novelcraft
    from novelcraft.dataset import CompileRecipe, compile_books, dataset_stats, read_jsonl, write_compiled
    from novelcraft.prep.book import prep_book
    from novelcraft.prep.recipe import PrepRecipe
    from novelcraft.tokens import load_token_counter
    from novelcraft.validate import has_errors, validate_file

    paths = [Path(p) for pattern in args.books for p in sorted(glob.glob(pattern))]
    if not paths:
        log.error("no books match %s", args.books)
        return 2
    counter = load_token_counter()
    prep = PrepRecipe(name="bench", books=[str(p) for p in paths])
    filler = Filler(counter, args.seed)
    books = [fill_synthetic(prep_book(p, prep, counter), filler) for p in paths]
    recipe = CompileRecipe(
        name="compile-speed", books=[str(p) for p in paths], split={"by": "book", "validation_fraction": 0.34}
    )

    compile_s, result = best_of(lambda: compile_books(books, recipe, counter), args.repeat)
    records = result.train + result.validation
    n_records = len(records)
    n_tokens = sum(r.meta.tokens for r in records)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="compile-speed-") as tmp:
        run_dir = Path(tmp)
        write_s, _ = best_of(lambda: write_compiled(result, recipe, run_dir), args.repeat)
        files = [run_dir / f"{s}.jsonl" for s in ("train", "validation") if (run_dir / f"{s}.jsonl").exists()]
        bytes_written = sum(f.stat().st_size for f in files)
        validate_s, issues = best_of(lambda: [i for f in files for i in validate_file(f, counter=counter)], args.repeat)
        schema_s, schema_issues = best_of(lambda: [i for f in files for i in validate_file(f)], args.repeat)
        hf_s = None
        if package_version("datasets"):
            from novelcraft.dataset import export_hf_dataset

            hf_s, _ = best_of(lambda: export_hf_dataset(result, run_dir / "hf_dataset"), args.repeat)
        ours = dataset_stats([r for f in files for r in read_jsonl(f)], counter)
    if has_errors(issues) or has_errors(schema_issues):
        for i in issues + schema_issues:
            log.error("%s", i.format())
        log.error("the compiled set does not validate")
        return 1
    peer = dataset_stats(read_jsonl(args.peer), counter) if args.peer.is_file() else None

    s = result.stats
    facts = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "CPU": f"{cpu_model()} — os.cpu_count()={os.cpu_count()}, usable={len(os.sched_getaffinity(0))}",
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "novelcraft": novelcraft.__version__,
        "pydantic": package_version("pydantic"),
        "tokenizers": package_version("tokenizers"),
        "datasets": package_version("datasets") or "not installed (hf export not measured)",
        "load average (1, 5, 15 min) at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "tokenizer": counter.name,
        "threads": ", ".join(
            f"`{k}`={os.environ.get(k, 'unset')}"
            for k in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS", "OMP_NUM_THREADS")
        ),
        "repeats": f"best of {args.repeat}",
    }
    budgets = recipe.budgets.record
    targets = ", ".join(f"{k} {v}" for k, v in TARGET_TOKENS.items())
    lines = ["# novelcraft compile + validate throughput", "", table(["fact", "value"], list(facts.items())), ""]
    lines += [
        "## Inputs",
        "",
        "Books prepared in-process with `blocks` segmentation and default budgets (scenes ≤ 3000 tokens; not "
        "timed). **The world context, instructions and running summaries are SYNTHETIC filler** (deterministic "
        "random words, each field starting with `SYNTHETIC`, rendered through the real models and sized to about "
        f"{targets} tokens), standing in for the LLM stages' output at realistic lengths; the scenes are the "
        "books' real text.",
        "",
        table(
            ["book", "narrative scenes", "reference scenes (dropped by the default recipe)", "records"],
            [(b.book_id, b.narrative_scenes, b.reference_scenes, b.train + b.validation) for b in s.books],
        ),
        "",
    ]
    parts = [
        ("world context", "world_context", budgets.world_context),
        ("running summary (with progress line)", "running_summary", budgets.running_summary),
        ("instruction", "instruction", budgets.instruction),
        ("system prompt (packaged default, real)", "system", budgets.system),
    ]
    part_rows = [(label, f"{s.tokens[k].median:g}", s.tokens[k].max, b) for label, k, b in parts]
    lines += [table(["prompt part (synthetic)", "median tokens", "max tokens", "budget"], part_rows), ""]

    def speed(label: str, seconds: float) -> tuple[str, str, str, str]:
        return label, f"{seconds:.3f}", f"{n_records / seconds:,.0f}", f"{n_tokens / seconds:,.0f}"

    speed_rows = [
        speed("compile_books (render + exact count + split)", compile_s),
        speed("write_compiled (JSONL, sidecars, data card)", write_s),
        speed("validate_file, with tokenizer (budgets)", validate_s),
        speed("validate_file, schema only", schema_s),
    ]
    if hf_s is not None:
        speed_rows.insert(2, speed("export_hf_dataset (datasets save_to_disk)", hf_s))
    n_errors = sum(i.severity == "error" for i in issues)
    lines += [
        "## Speed",
        "",
        f"{n_records} records, {n_tokens:,} tokens as ChatML, {bytes_written:,} bytes of JSONL "
        f"({s.records['train']} train + {s.records['validation']} validation, split by book).",
        "",
        table(["step", "seconds", "records/s", "tokens/s"], speed_rows),
        "",
        f"Validation issues on the compiled files: {len(issues)} (errors: {n_errors}).",
        "",
    ]

    def stat_row(label: str, d: Any) -> list[Any]:
        return [
            label,
            d.records,
            f"{d.tokens.median:g}",
            d.tokens.p95,
            d.tokens.max,
            f"{d.scene.median:g}",
            f"{d.context.median:g}",
            f"{d.narrative_context_ratio:.2f}:1" if d.narrative_context_ratio else "n/a",
        ]

    rows = [stat_row("novelcraft (sample books, synthetic prompt fields)", ours)]
    if peer is not None:
        rows.append(stat_row(f"peer data set (`{args.peer.name}`)", peer))
    lines += [
        "## Budget statistics: compiled set vs. peer data set",
        "",
        "Both counted with the same tokenizer, each record rendered with the same ChatML template; "
        "context = record tokens − scene (assistant) tokens; ratio = Σ scene ÷ Σ context (design: 2:1 to 3:1).",
        "",
        table(
            [
                "data set",
                "records",
                "median tokens",
                "p95",
                "max",
                "median scene",
                "median context",
                "narrative:context",
            ],
            rows,
        ),
        "",
    ]
    if peer is None:
        lines.append(f"Peer data set not found at `{args.peer}`: comparison skipped.\n")
    lines += [
        "Budget histogram of the compiled set (tokens per record):",
        "",
        table(["tokens", "records"], s.histogram),
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        out.update(
            facts=facts,
            compile_s=compile_s,
            write_s=write_s,
            hf_s=hf_s,
            validate_s=validate_s,
            schema_s=schema_s,
            records=n_records,
            tokens=n_tokens,
            bytes=bytes_written,
            ours=ours.model_dump(),
            peer=peer.model_dump() if peer else None,
            stats=s.model_dump(mode="json"),
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
