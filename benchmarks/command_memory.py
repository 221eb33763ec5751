"""Peak resident memory and wall time of each command of the quickstart (and of any other command line).

Run from the repository root inside the project's virtualenv::

    python benchmarks/command_memory.py                      # the quickstart's four commands, run dir runs/memory
    python benchmarks/command_memory.py --set llm.transformers.structured_backend=outlines_core   # compare
    python benchmarks/command_memory.py --command "novelcraft generate recipes/generate/cpu-smoke.yaml"

Each command runs as a child process; its peak is the largest ``VmHWM`` (the kernel's per-process
high-water mark of resident memory) in its process tree, sampled every 0.2 s by
:class:`novelcraft.procmem.TreePeak` (``wait4``'s ``ru_maxrss`` is not used: on Linux a child starts from its
parent's peak). The report (Markdown, stdout) names the machine, its load before and after, and the versions
of the packages that decide the figures. ``--set KEY=VALUE`` overrides go to the prep command (the one that
loads a model). Nothing touches the network.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from novelcraft.procmem import TreePeak

ROOT = Path(__file__).resolve().parents[1]


def quickstart(run_name: str, sets: list[str]) -> list[list[str]]:
    """The commands of scripts/quickstart.sh, in their own run and data-set directories."""
    nc = [sys.executable, "-m", "novelcraft"]
    return [
        [*nc, "prep", "recipes/prep/default.yaml", f"name={run_name}", *sets],
        [*nc, "validate", f"runs/{run_name}/books", "--recipe", "recipes/prep/default.yaml"],
        [*nc, "compile", "recipes/compile/default.yaml", f"name={run_name}", f"books=[runs/{run_name}/books]"],
        [*nc, "validate", f"runs/datasets/{run_name}", "--recipe", "recipes/compile/default.yaml"],
    ]


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run ``cmd`` to its end; its exit status, wall seconds and the peak RSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = TreePeak(proc.pid).start()
    _, err = proc.communicate()
    peak = sampler.stop()
    return {
        "command": " ".join(shlex.quote(c) for c in cmd).replace(shlex.quote(sys.executable) + " -m ", ""),
        "returncode": proc.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_mib": round(peak / 2**20),
        "stderr_tail": err.strip().splitlines()[-1:] if proc.returncode else [],
    }


def _versions() -> str:
    names = ["novelcraft", "torch", "transformers", "outlines", "outlines_core", "llguidance", "tokenizers"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--command", action="append", help="a command line to measure instead (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for the prep command")
    p.add_argument("--name", default="memory", help="run name of the quickstart commands (default: memory)")
    p.add_argument("--keep", action="store_true", help="keep the run directories afterwards")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if not TreePeak.supported():
        print("needs Linux /proc (per-process VmHWM)", file=sys.stderr)
        return 2
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}
    commands = [shlex.split(c) for c in args.command] if args.command else quickstart(args.name, args.set)
    load_before = os.getloadavg()
    rows = []
    for cmd in commands:
        row = measure(cmd, env)
        rows.append(row)
        print(f"{row['peak_rss_mib']:>7} MiB {row['seconds']:>7} s  rc={row['returncode']}  {row['command']}",
              file=sys.stderr)  # fmt: skip
        if row["returncode"]:
            break
    load_after = os.getloadavg()
    if not args.keep and not args.command:
        for d in (ROOT / "runs" / args.name, ROOT / "runs" / "datasets" / args.name):
            shutil.rmtree(d, ignore_errors=True)
    print(f"# Peak memory per command ({_dt.date.today().isoformat()})\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f}.  ")  # fmt: skip
    print(f"Versions: {_versions()}.  ")
    print(f"Overrides of the prep command: {' '.join(args.set) or 'none'}.\n")
    print("| command | exit | wall s | peak RSS MiB |\n|---|---|---|---|")
    for row in rows:
        print(f"| `{row['command']}` | {row['returncode']} | {row['seconds']} | {row['peak_rss_mib']} |")
    failed = [r for r in rows if r["returncode"]]
    for r in failed:
        print(f"\nfailed: `{r['command']}`: {' '.join(r['stderr_tail'])}")  # type: ignore[arg-type]
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "set": args.set}, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
