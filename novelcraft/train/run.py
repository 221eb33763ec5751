"""``novelcraft train``: render a train recipe into its run directory, check it, launch the tool.

The run directory ``OUTPUT_DIR/NAME`` holds::

    recipe.resolved.yaml     the recipe with every default filled in
    axolotl.yaml|swift.yaml  the native config (runnable with the plain tool CLI)
    deepspeed_zero3.json     side files the config refers to, if any
    train.log                the tool's output
    output/                  the adapter, checkpoints and the tool's own logs
    stats.json               tool, versions, data sizes, exit status, wall time, final losses
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from ..errors import NovelcraftError
from ..io import atomic_write_json, atomic_write_text
from ..models import TrainingRecord
from ..reasoning_format import ContinuationRecord
from ..recipes import write_resolved_recipe
from .common import resource_file
from .recipe import TrainRecipe
from .render import RenderedConfig, render_tool_config
from .toolenv import find_toolenv, run_captured, run_streaming, tool_env, tool_python

log = logging.getLogger(__name__)


class TrainError(NovelcraftError):
    """The data, the tool's own validation or the training run failed."""


@dataclass
class PreparedRun:
    """A training run ready to launch: its recipe, run directory, rendered config and command."""

    recipe: TrainRecipe
    run_dir: Path
    config_path: Path
    rendered: RenderedConfig
    n_train: int
    n_validation: int


@dataclass
class CheckResult:
    """What the tool's own validation said about a rendered config."""

    tool: str
    config_path: Path
    ok: bool
    error: str | None = None
    dropped: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    """A finished (or failed) training run: where it wrote, and the trainer's exit status."""

    run_dir: Path
    config_path: Path
    returncode: int
    seconds: float
    adapter_dir: Path | None
    stats: dict[str, Any]


def _check_record(line: str) -> None:
    """A scene record ``[system, user, assistant]``, or a reasoning-continuation record (CRA ``[user, assistant]``)."""
    try:
        TrainingRecord.model_validate_json(line)
    except ValidationError:
        try:
            ContinuationRecord.model_validate_json(line)
        except ValidationError:
            pass
        else:
            return
        raise


def count_records(path: str | Path, *, step: str = "data") -> int:
    """Number of records of a compiled JSONL, each checked as a :class:`TrainingRecord` (or a
    :class:`~novelcraft.reasoning_format.ContinuationRecord` of ``novelcraft continuation``)."""
    path = Path(path)
    if not path.is_file():
        raise TrainError("data file not found (run novelcraft compile first?)", path=path, step=step)
    n = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                _check_record(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first["loc"]) or "record"
                raise TrainError(
                    f"line {lineno}: {where}: {first['msg'].removeprefix('Value error, ')}", path=path, step=step
                ) from None
            n += 1
    if n == 0:
        raise TrainError("no records", path=path, step=step)
    return n


def launch_command(recipe: TrainRecipe, config_path: Path, venv: Path | None = None) -> list[str]:
    """The tool command that trains from ``config_path`` (with ``venv``'s executables when given)."""
    bindir = f"{venv}/bin/" if venv else ""
    if recipe.tool == "axolotl":
        cmd = [f"{bindir}axolotl", "train", str(config_path)]
        if recipe.distributed.strategy != "none":
            cmd += ["--launcher", "accelerate", "--", "--num_processes", str(recipe.distributed.num_gpus)]
        elif recipe.device == "cpu":
            cmd += ["--launcher", "python"]
        return cmd
    return [f"{bindir}swift", "sft", str(config_path)]


def _launch_env_extra(recipe: TrainRecipe) -> dict[str, str]:
    if recipe.tool == "swift" and recipe.distributed.strategy != "none":
        return {"NPROC_PER_NODE": str(recipe.distributed.num_gpus)}
    return {}


def _count_if(path: str | None, step: str, require: bool) -> int:
    if path is None:
        return 0
    if not require and not Path(path).is_file():
        log.warning("%s: %s does not exist yet; records not checked", step, path)
        return 0
    return count_records(path, step=step)


def prepare_run(recipe: TrainRecipe, *, require_data: bool = True) -> PreparedRun:
    """Check the data files (every record), then write the resolved recipe and the rendered tool
    config into the run dir. With ``require_data=False`` missing data files are only logged."""
    n_train = _count_if(recipe.data.train, "data.train", require_data)
    n_val = _count_if(recipe.data.validation, "data.validation", require_data)
    run_dir = recipe.run_dir
    rendered = render_tool_config(recipe, run_dir, n_train or None)
    write_resolved_recipe(recipe, run_dir)
    for name, text in rendered.side_files.items():
        atomic_write_text(run_dir / name, text)
    config_path = (run_dir / rendered.filename).resolve()
    env_vars = dict(_launch_env_extra(recipe))
    if recipe.device == "cpu":
        env_vars.update(CUDA_VISIBLE_DEVICES='""', OMP_NUM_THREADS="1")
    env_prefix = " ".join(f"{k}={v}" for k, v in env_vars.items())
    command = " ".join(shlex.quote(c) for c in launch_command(recipe, config_path))
    atomic_write_text(config_path, rendered.text(f"{env_prefix} {command}".strip()))
    return PreparedRun(recipe, run_dir, config_path, rendered, n_train, n_val)


def validate_with_tool(
    tool: str,
    config_paths: Path | Sequence[Path],
    venv: Path,
    *,
    post_init: bool | Sequence[bool] = True,
    targets: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Run the tool's own config validation on each rendered config inside ``venv`` (one process).

    ``targets`` (axolotl): the machine of each config, ``cpu`` or ``cuda:N`` (default ``cuda:1``);
    axolotl runs some checks only against the capabilities of the machine it trains on.
    ``post_init`` (swift, per config or for all): also run swift's post-parse checks, which read the
    base model's files; without it the arguments are only parsed.
    """
    paths = [config_paths] if isinstance(config_paths, (str, Path)) else list(config_paths)
    items = [str(p) for p in paths]
    if tool == "axolotl" and targets:
        items = [f"{p}@{t}" for p, t in zip(items, targets)]
    elif tool == "swift":
        flags = [post_init] * len(items) if isinstance(post_init, bool) else list(post_init)
        items = [f"{p}@{'full' if f else 'parse'}" for p, f in zip(items, flags)]
    cmd: list[str | Path] = [tool_python(venv), resource_file("tool_check.py"), "validate", tool, *items]
    env = tool_env(venv, cpu=True, extra={"HF_HUB_OFFLINE": "1"})
    proc = run_captured(cmd, env=env, timeout=900)
    outs = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if len(outs) != len(paths):
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise TrainError(f"{tool} validation crashed (exit {proc.returncode}): {tail}", path=paths[0], step="check")
    return [
        CheckResult(tool, Path(o["config"]), bool(o["ok"]), o.get("error"), list(o.get("dropped") or [])) for o in outs
    ]


def target_of(recipe: TrainRecipe) -> str:
    """``cpu`` or ``cuda:N``: the machine a recipe trains on (for the tools' capability checks)."""
    return "cpu" if recipe.device == "cpu" else f"cuda:{recipe.distributed.num_gpus}"


def _model_is_local(recipe: TrainRecipe) -> bool:
    return (Path(recipe.base_model).expanduser() / "config.json").is_file()


def check_train(recipe: TrainRecipe, *, require_data: bool = False) -> CheckResult:
    """Render ``recipe`` into its run dir and validate it with the tool itself (no training).

    Axolotl: ``validate_config`` on the rendered YAML plus a check that it drops no key. MS-SWIFT: its
    argument parser on the rendered YAML, including swift's own post-parse checks when the base model
    is a local folder (they read its config; a hub id is only parsed). Data files are checked record
    by record when they exist (``require_data``: they must). Raises :class:`TrainError` when the tool
    rejects the config.
    """
    prepared = prepare_run(recipe, require_data=require_data)
    venv = find_toolenv(recipe.tool, recipe.toolenv)
    (result,) = validate_with_tool(
        recipe.tool, prepared.config_path, venv, post_init=_model_is_local(recipe), targets=[target_of(recipe)]
    )
    if not result.ok:
        raise TrainError(f"{recipe.tool} rejects the config: {result.error}", path=prepared.config_path, step="check")
    return result


def _final_losses(output_dir: Path) -> dict[str, Any]:
    """Last train loss, last eval loss and step count from the newest trainer_state.json."""
    states = sorted(output_dir.rglob("trainer_state.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return {}
    state = json.loads(states[-1].read_text(encoding="utf-8"))
    history = state.get("log_history", [])
    out: dict[str, Any] = {"global_step": state.get("global_step")}
    for entry in history:
        if "loss" in entry:
            out["train_loss"] = entry["loss"]
        if "eval_loss" in entry:
            out["eval_loss"] = entry["eval_loss"]
        if "grad_norm" in entry:
            out["grad_norm"] = entry["grad_norm"]
    return out


def find_adapter(output_dir: Path) -> Path | None:
    """The folder holding the final adapter (``adapter_config.json``), preferring the top level."""
    if (output_dir / "adapter_config.json").is_file():
        return output_dir
    found = sorted(output_dir.rglob("adapter_config.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def run_train(recipe: TrainRecipe, *, check: bool = True, echo: TextIO | None = sys.stdout) -> TrainResult:
    """Render ``recipe``, validate it with the tool (``check``), then run the tool from its venv.

    The tool's output is streamed to ``echo`` and appended to ``RUN_DIR/train.log``. Raises
    :class:`TrainError` when the tool fails; writes ``stats.json`` in every case.
    """
    venv = find_toolenv(recipe.tool, recipe.toolenv)
    prepared = prepare_run(recipe)
    if check:
        (result,) = validate_with_tool(
            recipe.tool, prepared.config_path, venv, post_init=_model_is_local(recipe), targets=[target_of(recipe)]
        )
        if not result.ok:
            raise TrainError(
                f"{recipe.tool} rejects the config: {result.error}", path=prepared.config_path, step="check"
            )
    cmd = launch_command(recipe, prepared.config_path, venv)
    env = tool_env(venv, cpu=recipe.device == "cpu", extra=_launch_env_extra(recipe))
    log_file = prepared.run_dir / "train.log"
    log.info("training with %s: %s", recipe.tool, " ".join(cmd))
    start = time.perf_counter()
    rc, peak_rss = run_streaming(cmd, env=env, log_file=log_file, cwd=prepared.run_dir, echo=echo)
    seconds = time.perf_counter() - start
    output_dir = prepared.run_dir / "output"
    adapter = find_adapter(output_dir) if output_dir.is_dir() else None
    stats = {
        "tool": recipe.tool,
        "command": cmd,
        "toolenv": str(venv),
        "config": str(prepared.config_path),
        "train_records": prepared.n_train,
        "validation_records": prepared.n_validation,
        "returncode": rc,
        "seconds": round(seconds, 2),
        # Host memory of the tool's process tree (on a CPU run: the training memory itself).
        "peak_rss_mib": round(peak_rss / 2**20, 1) if peak_rss else None,
        "adapter_dir": str(adapter) if adapter else None,
        **(_final_losses(output_dir) if output_dir.is_dir() else {}),
    }
    atomic_write_json(prepared.run_dir / "stats.json", stats)
    if rc != 0:
        raise TrainError(
            f"{recipe.tool} exited with status {rc} (log: {log_file})", path=prepared.config_path, step="train"
        )
    return TrainResult(prepared.run_dir, prepared.config_path, rc, seconds, adapter, stats)
