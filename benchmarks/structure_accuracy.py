"""Structure accuracy: every book of the structure corpus, truth against novelcraft and against peer tools.

Run from the repository root::

    python benchmarks/structure_accuracy.py [--corpus tests/data/corpus] [--books NAME...] [--json OUT]

For every book of the corpus (``truth.json``: chapter count, first and last headings with their
containers, first and last narrative words) it scores, with :func:`novelcraft.prep.structure.truth.score`:

* **novelcraft**: ingest and structure (stages 1-2, :func:`novelcraft.prep.inspect.inspect_book` with the
  default settings; no per-book settings);
* **chapterize** 0.1.6 (PyPI): its chapter splitting of plain text (it reads no EPUB);
* **gutenbergpy** 0.4.0 ``textget.strip_headers`` and **gutenberg-cleaner** 0.1.6 ``simple_cleaner``
  (PyPI): Gutenberg header/footer stripping of plain text. They do not split chapters, so they are
  scored on what stripping is for: Gutenberg text left, the narrative kept whole (first and last words
  present), and the words they keep outside the narrative (front and back matter). novelcraft's
  narrative is measured on the same columns.

Columns: chapters found / truth; ``exact`` (count, first/last titles, first/last words, no residue);
residue found in the narrative (illustration markers, image names, page numbers, Gutenberg text, control
characters, glued note numbers); words kept before the first and after the last narrative words. The
summary line is ``structure exact: K/N (peers: ...)``. The peers need ``bash scripts/setup.sh dev,peers``;
a missing one is reported as not installed. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from novelcraft.prep.structure.truth import (  # noqa: E402
    RESIDUE,
    ChapterText,
    TruthEntry,
    chapter_texts,
    residue,
    score,
    words,
)

log = logging.getLogger("structure_accuracy")
PEERS = {"chapterize": "chapterize", "gutenbergpy": "gutenbergpy", "gutenberg-cleaner": "gutenberg_cleaner"}


def version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def outside_narrative(text: str, truth: TruthEntry) -> tuple[int | None, int | None]:
    """Words kept before the first and after the last narrative words (None: those words are not there)."""
    stream = words(text)
    first, last = words(truth.first_words), words(truth.last_words)
    if "dropcap-image-missing-first-letter" in truth.shape and " " in first:
        first = first.split(" ", 1)[1]
    a, b = stream.find(first[:80]), stream.rfind(last[-80:])
    before = len(stream[:a].split()) if a >= 0 else None
    after = len(stream[b + len(last[-80:]) :].split()) if b >= 0 else None
    return before, after


# --------------------------------------------------------------------------- the splitters


def ours(path: Path) -> tuple[list[ChapterText], str, dict[str, Any]]:
    from novelcraft.prep.inspect import inspect_book

    result = inspect_book(path)
    chapters = chapter_texts(result.clean)
    kinds = sorted({r.kind for r in result.clean.reference})
    return chapters, "\n\n".join(c.text for c in chapters), {"reference_kinds": kinds, "warnings": result.warnings}


def chapterize(path: Path) -> list[ChapterText]:
    """chapterize's Book on a plain-text file, in a scratch folder (it writes log files to the working
    directory and calls exit() when it finds fewer than three chapters: no chapters, then)."""
    from chapterize.chapterize import Book

    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        logging.disable(logging.CRITICAL)  # it logs through the root logger
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                book = Book(str(path), nochapters=False, stats=True)
        except SystemExit:
            return []
        finally:
            logging.disable(logging.NOTSET)
            os.chdir(here)
    heads = book.headingLocations
    return [ChapterText(headings=[book.lines[loc]], text="\n".join(ch)) for loc, ch in zip(heads, book.chapters)]


def gutenbergpy_strip(path: Path) -> str:
    from gutenbergpy.textget import strip_headers

    return strip_headers(path.read_bytes()).decode("utf-8", errors="replace")


def gutenberg_cleaner_strip(path: Path) -> str:
    from gutenberg_cleaner import simple_cleaner

    return simple_cleaner(path.read_text(encoding="utf-8", errors="replace"))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# --------------------------------------------------------------------------- one book


def measure(entry: TruthEntry, corpus: Path, available: dict[str, bool]) -> dict[str, Any]:
    path = corpus / entry.file
    text_file = path.suffix.lower() != ".epub"
    row: dict[str, Any] = {"book": path.name, "truth_chapters": entry.chapters}
    (chapters, narrative, info), secs = timed(lambda: ours(path))
    s = score(chapters, entry)
    row["novelcraft"] = {
        "chapters": s.chapters,
        "exact": s.exact,
        "first_title": s.first_title,
        "last_title": s.last_title,
        "first_words": s.first_words,
        "last_words": s.last_words,
        "residue": s.residue,
        "words": s.words,
        "outside_narrative": outside_narrative(narrative, entry),
        "seconds": round(secs, 3),
        **info,
    }
    if available["chapterize"]:
        if text_file:
            got, secs = timed(lambda: chapterize(path))
            c = score(got, entry)
            row["chapterize"] = {
                "chapters": c.chapters,
                "exact": c.exact,
                "first_title": c.first_title,
                "last_title": c.last_title,
                "first_words": c.first_words,
                "last_words": c.last_words,
                "residue": c.residue,
                "words": c.words,
                "seconds": round(secs, 3),
            }
        else:
            row["chapterize"] = None  # plain text only
    for name, fn in (("gutenbergpy", gutenbergpy_strip), ("gutenberg-cleaner", gutenberg_cleaner_strip)):
        if not available[name]:
            continue
        if not text_file:
            row[name] = None
            continue
        text, secs = timed(lambda fn=fn: fn(path))
        left = residue([text]).get("Gutenberg text", 0)
        before, after = outside_narrative(text, entry)
        row[name] = {
            "gutenberg_text_left": left,
            "outside_narrative": (before, after),
            "narrative_whole": before is not None and after is not None,
            "seconds": round(secs, 3),
        }
    return row


# --------------------------------------------------------------------------- report


def fmt_outside(pair: Any) -> str:
    before, after = pair
    if before is None or after is None:
        return "cut"
    return f"{before} / {after}"


def report(rows: list[dict[str, Any]], available: dict[str, bool], facts: dict[str, Any]) -> str:
    out = [f"# Structure accuracy — {facts['date']}", ""]
    out.append(
        f"Machine: {facts['cpu']} ({facts['cpus']} CPUs), load average {facts['load']}, Python {facts['python']}; "
        f"novelcraft {facts['novelcraft']}; peers: "
        + ", ".join(f"{n} {v or 'not installed'}" for n, v in facts["peers"].items())
    )
    out += ["", "Command: `python benchmarks/structure_accuracy.py`", ""]
    head = ["book", "truth", "novelcraft", "exact", "residue", "outside (before / after)"]
    if available["chapterize"]:
        head += ["chapterize", "exact"]
    for name in ("gutenbergpy", "gutenberg-cleaner"):
        if available[name]:
            head += [f"{name}: PG left", "outside"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        n = r["novelcraft"]
        cells = [
            r["book"],
            str(r["truth_chapters"]),
            str(n["chapters"]),
            "yes" if n["exact"] else "**no**",
            str(sum(n["residue"].values())),
            fmt_outside(n["outside_narrative"]),
        ]
        if available["chapterize"]:
            c = r["chapterize"]
            cells += ["n/a (EPUB)", "–"] if c is None else [str(c["chapters"]), "yes" if c["exact"] else "no"]
        for name in ("gutenbergpy", "gutenberg-cleaner"):
            if available[name]:
                g = r[name]
                cells += (
                    ["n/a (EPUB)", "–"]
                    if g is None
                    else [str(g["gutenberg_text_left"]), fmt_outside(g["outside_narrative"])]
                )
        out.append("| " + " | ".join(cells) + " |")
    out += ["", summary(rows, available), ""]
    misses = [(r["book"], r["novelcraft"]) for r in rows if not r["novelcraft"]["exact"]]
    if misses:
        out += ["Misses of novelcraft:", ""]
        for book, n in misses:
            failed = [k for k in ("first_title", "last_title", "first_words", "last_words") if not n[k]]
            out.append(
                f"- {book}: {n['chapters']} chapters; failed {', '.join(failed) or 'count'}; residue {n['residue']}"
            )
        out.append("")
    secs = sum(r["novelcraft"]["seconds"] for r in rows)
    out.append(
        f"novelcraft ingest + structure: {secs:.1f} s for {len(rows)} books "
        f"({sum(r['novelcraft']['words'] for r in rows) / secs:,.0f} narrative words/s)."
    )
    out.append("")
    out.append(
        "Residue kinds checked: " + ", ".join(RESIDUE) + ". `outside` counts the words kept before the first "
        "and after the last narrative words of the truth (headings of the narrative excluded for novelcraft: "
        "it keeps none); `cut` means the narrative's first or last words are missing."
    )
    return "\n".join(out) + "\n"


def summary(rows: list[dict[str, Any]], available: dict[str, bool]) -> str:
    n = len(rows)
    ours_exact = sum(r["novelcraft"]["exact"] for r in rows)
    peers = []
    if available["chapterize"]:
        done = [r["chapterize"] for r in rows if r["chapterize"] is not None]
        peers.append(f"chapterize {sum(c['exact'] for c in done)}/{n} ({n - len(done)} EPUBs it cannot read)")
    for name in ("gutenbergpy", "gutenberg-cleaner"):
        if available[name]:
            done = [r[name] for r in rows if r[name] is not None]
            clean = sum(1 for g in done if g["gutenberg_text_left"] == 0 and g["narrative_whole"])
            peers.append(
                f"{name} header/footer stripped with the narrative whole {clean}/{n} ({n - len(done)} EPUBs "
                "it cannot read)"
            )
    mine = sum(
        1
        for r in rows
        if r["novelcraft"]["residue"].get("Gutenberg text", 0) == 0
        and "cut" != fmt_outside(r["novelcraft"]["outside_narrative"])
    )
    return (
        f"structure exact: {ours_exact}/{n} (peers: {'; '.join(peers) or 'none installed'}); "
        f"novelcraft header/footer stripped with the narrative whole {mine}/{n}"
    )


def machine_facts() -> dict[str, Any]:
    import novelcraft

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "novelcraft": novelcraft.__version__,
        "peers": {name: version(name) for name in PEERS},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "corpus")
    p.add_argument("--books", nargs="*", help="only the books whose file name contains one of these")
    p.add_argument("--json", type=Path, help="also write every number as JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    truth = [TruthEntry.model_validate(t) for t in json.loads((args.corpus / "truth.json").read_text(encoding="utf-8"))]
    if args.books:
        truth = [t for t in truth if any(b in t.file for b in args.books)]
    available = {}
    for name, module in PEERS.items():
        try:
            __import__(module)
            available[name] = True
        except ImportError:
            log.warning("%s is not installed (bash scripts/setup.sh dev,peers): its columns are left out", name)
            available[name] = False
    facts = machine_facts()
    rows = []
    for entry in truth:
        log.info("%s", entry.file)
        rows.append(measure(entry, args.corpus, available))
    text = report(rows, available, facts)
    print(text, end="")
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
