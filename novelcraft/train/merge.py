"""``novelcraft merge``: fold a LoRA/QLoRA adapter into a bf16 model for serving, optionally as GGUF.

Serving fused-expert (3-D) LoRA adapters directly was unreliable in GPU vLLM, so the safe path is a
merged model. Merging needs torch, transformers and peft: the current interpreter is used when it has
them, else a tool venv (axolotl first, then swift). GGUF export runs llama.cpp's
``convert_hf_to_gguf.py``, which no PyPI package installs as a tool (the ``gguf`` package only reads
and writes the format), so its path must be given.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from ..errors import NovelcraftError, setup_hint
from ..io import atomic_write_json
from .common import resource_file
from .toolenv import (
    ToolEnvError,
    find_toolenv,
    run_captured,
    run_streaming,
    tool_env,
    tool_python,
)

log = logging.getLogger(__name__)


def _python_for_merge(python: str | Path | None) -> tuple[Path, dict[str, str]]:
    if python:
        venv = Path(python).expanduser()
        if venv.is_dir():
            return tool_python(venv), tool_env(venv)
        return venv, dict(os.environ)
    if all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft")):
        return Path(sys.executable), dict(os.environ)
    for tool in ("axolotl", "swift"):
        try:
            venv = find_toolenv(tool)
        except ToolEnvError:
            continue
        return tool_python(venv), tool_env(venv)
    raise NovelcraftError(
        f"merging needs torch, transformers and peft: {setup_hint('dev,merge')}, or create a tool "
        "venv with `bash scripts/toolenv.sh axolotl`",
        step="merge",
    )


def merge_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    base_model: str | None = None,
    dtype: str = "bfloat16",
    python: str | Path | None = None,
) -> dict:
    """Merge the PEFT adapter in ``adapter_dir`` into its base model and save it to ``out_dir``.

    ``base_model`` defaults to the adapter's ``base_model_name_or_path``. ``python`` is an interpreter
    or a venv folder to run the merge in (default: this one if it has peft, else a tool venv). The
    model is written to a temporary sibling folder and renamed, so ``out_dir`` is complete or absent.
    Returns the merge report (base, dtype, parameter count).
    """
    adapter = Path(adapter_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise NovelcraftError("no adapter_config.json: not a PEFT adapter folder", path=adapter, step="merge")
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    py, env = _python_for_merge(python)
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd: list[str | Path] = [py, resource_file("merge_lora.py"), adapter, tmp, "--dtype", dtype]
    if base_model:
        cmd += ["--base", base_model]
    proc = run_captured(cmd, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise NovelcraftError(f"merge failed (exit {proc.returncode}): {tail}", path=adapter, step="merge")
    report = {**json.loads(lines[-1]), "out": str(out), "adapter": str(adapter)}
    atomic_write_json(tmp / "novelcraft_merge.json", report)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return report


def resolve_gguf_converter(converter: str | Path | None = None) -> Path:
    """llama.cpp's ``convert_hf_to_gguf.py``: ``converter`` or ``$LLAMA_CPP_CONVERT``; raises when absent."""
    script = converter or os.environ.get("LLAMA_CPP_CONVERT")
    if not script or not Path(script).is_file():
        raise NovelcraftError(
            "GGUF export needs llama.cpp's convert_hf_to_gguf.py, which no PyPI package installs (the gguf "
            "package only reads and writes the format): pass --gguf-converter PATH/convert_hf_to_gguf.py "
            "from a llama.cpp checkout, or set LLAMA_CPP_CONVERT",
            path=script,
            step="gguf",
        )
    return Path(script)


def export_gguf(
    model_dir: str | Path,
    out_file: str | Path,
    *,
    converter: str | Path | None = None,
    outtype: str = "bf16",
    python: str | Path | None = None,
) -> Path:
    """Convert a merged Hugging Face model folder to GGUF with llama.cpp's ``convert_hf_to_gguf.py``.

    ``converter`` (or ``$LLAMA_CPP_CONVERT``) is the path of that script from a llama.cpp checkout; it
    needs the ``gguf`` package (PyPI) next to torch and transformers in ``python``.
    """
    script = resolve_gguf_converter(converter)
    py, env = _python_for_merge(python)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    rc, _ = run_streaming([py, script, model_dir, "--outfile", tmp, "--outtype", outtype], env=env, echo=sys.stderr)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise NovelcraftError(f"convert_hf_to_gguf.py exited with status {rc}", path=model_dir, step="gguf")
    tmp.replace(out)
    return out
