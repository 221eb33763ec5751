"""``novelcraft export``: a trained adapter -> merged model -> GGUF -> quantized GGUF -> Ollama ``Modelfile``.

Two ways, chosen by ``method`` (``auto`` picks one from the adapter):

* ``merge`` — merge the adapter into its base (:func:`~novelcraft.train.merge.merge_adapter`), convert with
  llama.cpp's ``convert_hf_to_gguf.py``, quantize with ``llama-quantize``; the Modelfile's FROM is the
  quantized file. The only way for a MoE adapter with expert LoRA (``target_parameters``), which
  ``convert_lora_to_gguf.py`` cannot convert;
* ``adapter`` — the base converted and quantized as above, the LoRA converted alone with
  ``convert_lora_to_gguf.py``; the Modelfile has FROM (the base) and ADAPTER (the GGUF LoRA), as the CRA-v1
  release that ships base plus adapter layers.

The run directory ``OUTPUT_DIR/NAME`` gets ``model-<TYPE>.gguf`` files (``adapter-<TYPE>.gguf``), the
``Modelfile``, ``export.json`` (files with sizes and SHA-256, versions, commands) and the resolved recipe.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..chat_format import render_chatml, render_jinja_chat
from ..errors import NovelcraftError
from ..io import atomic_write_json, atomic_write_text, sha256_file
from ..reasoning_format import FormatName, system_prompt
from ..recipes import Recipe, write_resolved_recipe
from ..strict import Strict
from . import llamacpp
from .merge import _python_for_merge, merge_adapter
from .ollama import CHATML_TEMPLATE, render_modelfile
from .toolenv import run_streaming

log = logging.getLogger(__name__)

#: llama-quantize types a recipe may ask for.
QUANT_TYPES = frozenset(
    {"Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0", "Q3_K_M", "Q3_K_L", "Q2_K", "IQ4_NL"}
)
#: the conversation probe that the model's chat template must render as plain ChatML.
PROBE = (
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
)


def _default_parameters() -> dict[str, Any]:
    return {"num_ctx": 32768, "temperature": 0.7, "top_p": 0.8, "repeat_penalty": 1.07, "stop": ["<|im_end|>"]}


class ModelfileConfig(Strict):
    """The Ollama Modelfile: which GGUF it loads, its SYSTEM, its PARAMETERs (the CRA-v1 release's by default)."""

    enabled: bool = True
    quantization: str | None = Field(None, description="the GGUF of FROM: a quantization type (default: the first)")
    format: FormatName = Field("cra", description="the records' format: SYSTEM auto follows it")
    system: str = Field(
        "auto",
        description="auto: the chat format's system turn, none for cra (its records have no system turn: the "
        "'### System:' line is in the user turn); none; or the text itself",
    )
    template: str | None = Field(None, description="a Go template replacing the ChatML one")
    parameters: dict[str, Any] = Field(default_factory=_default_parameters)

    def system_text(self) -> str | None:
        """The SYSTEM text, or None."""
        if self.system == "auto":
            return system_prompt(self.format)
        return None if self.system == "none" else self.system


class ExportRecipe(Recipe):
    """Recipe of ``novelcraft export``: from an adapter (or a merged model) to GGUF files and a Modelfile."""

    kind: Literal["export"] = "export"
    output_dir: str = Field("runs/export", description="files go to OUTPUT_DIR/NAME")
    adapter: str | None = Field(None, description="the trained PEFT adapter folder (adapter_config.json)")
    model: str | None = Field(None, description="instead of an adapter: a Hugging Face model folder to convert")
    base_model: str | None = Field(None, description="the adapter's base (default: its base_model_name_or_path)")
    method: Literal["auto", "merge", "adapter"] = "auto"
    merge_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    outtype: Literal["f32", "f16", "bf16", "q8_0"] = Field("f16", description="convert_hf_to_gguf.py --outtype")
    quantizations: list[str] = Field(default_factory=lambda: ["Q4_K_M"], description="llama-quantize types")
    keep_merged: bool = Field(False, description="keep the merged Hugging Face folder next to the GGUF files")
    python: str | None = Field(None, description="interpreter or venv with torch + transformers (+ peft)")
    modelfile: ModelfileConfig = ModelfileConfig()

    @model_validator(mode="after")
    def _check(self) -> ExportRecipe:
        if (self.adapter is None) == (self.model is None):
            raise ValueError("give adapter or model (one of them)")
        if self.model is not None and self.method == "adapter":
            raise ValueError("method adapter needs an adapter")
        bad = sorted(set(self.quantizations) - QUANT_TYPES)
        if bad:
            raise ValueError(f"unknown quantization types {bad}; known: {sorted(QUANT_TYPES)}")
        q = self.modelfile.quantization
        if q is not None and q not in self.quantizations and q.lower() != self.outtype:
            raise ValueError(f"modelfile.quantization {q} is neither in quantizations nor the outtype")
        return self


def adapter_config(adapter: str | Path) -> dict[str, Any]:
    """The adapter's ``adapter_config.json``."""
    path = Path(adapter) / "adapter_config.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise NovelcraftError(
            f"not a PEFT adapter folder ({type(exc).__name__})", path=adapter, step="export"
        ) from None


def choose_method(recipe: ExportRecipe) -> Literal["merge", "adapter"]:
    """``merge`` for expert LoRA (``target_parameters``) or a model; ``adapter`` for a dense LoRA under ``auto``."""
    if recipe.adapter is None:
        return "merge"
    experts = bool(adapter_config(recipe.adapter).get("target_parameters"))
    if recipe.method == "adapter" and experts:
        raise NovelcraftError(
            "the adapter has expert LoRA (target_parameters), which convert_lora_to_gguf.py cannot convert: "
            "set method: merge (merge first for MoE)",
            path=recipe.adapter,
            step="export",
        )
    if recipe.method != "auto":
        return recipe.method
    return "merge" if experts else "adapter"


def chat_template_of(model_dir: Path) -> str | None:
    """The Jinja chat template stored with a model (``chat_template.jinja`` or ``tokenizer_config.json``)."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    cfg = model_dir / "tokenizer_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        return value if isinstance(value, str) else None
    return None


def ollama_template(model_dir: Path, override: str | None, adapter: str | Path | None = None) -> str:
    """The Modelfile TEMPLATE: ``override``, or the ChatML one after checking that the chat template the model
    trained with (the adapter's, else the model's own) renders the probe conversation exactly as ChatML (an
    error names the difference otherwise)."""
    if override:
        return override
    jinja = (chat_template_of(Path(adapter)) if adapter else None) or chat_template_of(model_dir)
    if jinja is None:
        raise NovelcraftError("the model has no chat template: give modelfile.template", path=model_dir, step="export")
    for gen in (True, False):
        probe = PROBE if gen else (*PROBE, {"role": "assistant", "content": "A2"})
        got = render_jinja_chat(jinja, probe, add_generation_prompt=gen)
        want = render_chatml(probe, add_generation_prompt=gen)
        if got != want:
            raise NovelcraftError(
                f"the model's chat template is not plain ChatML ({got[:80]!r} vs {want[:80]!r}): "
                "give modelfile.template",
                path=model_dir,
                step="export",
            )
    return CHATML_TEMPLATE


def _convert(py: Path, env: dict[str, str], args: list[str | Path], out: Path, what: str) -> Path:
    tmp = out.with_name(f".{out.name}.partial")
    tmp.unlink(missing_ok=True)
    cmd = [py, *args, "--outfile", tmp]
    rc, _ = run_streaming(cmd, env=env, echo=sys.stderr, log_file=out.parent / "export.log")
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise NovelcraftError(f"{what} exited with status {rc} (log: {out.parent / 'export.log'})", step="gguf")
    tmp.replace(out)
    return out


def export_model(recipe: ExportRecipe, *, build_quantize: bool = False) -> dict[str, Any]:
    """Run the export of ``recipe`` into ``recipe.run_dir``; returns the report written to ``export.json``.

    ``build_quantize`` builds the cached ``llama-quantize`` when it is missing (else that is an error naming
    the flag, raised before any conversion when quantizations are asked for).
    """
    t0 = time.perf_counter()
    run_dir = recipe.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    method = choose_method(recipe)
    quantizer = llamacpp.find_quantize(build=build_quantize) if recipe.quantizations else None
    py, env = _python_for_merge(recipe.python)
    env = llamacpp.converter_env(env)
    write_resolved_recipe(recipe, run_dir)
    base = Path(
        recipe.base_model
        or (adapter_config(recipe.adapter).get("base_model_name_or_path") if recipe.adapter else "")
        or ""
    )
    outtype = recipe.outtype.upper()
    files: dict[str, Path] = {}
    merged: Path | None = None
    if recipe.model is not None:
        hf_dir = Path(recipe.model)
    elif method == "merge":
        assert recipe.adapter is not None
        merged = run_dir / "merged"
        merge_adapter(
            recipe.adapter, merged, base_model=recipe.base_model, dtype=recipe.merge_dtype, python=recipe.python
        )
        hf_dir = merged
    else:
        hf_dir = base
    if not (hf_dir / "config.json").is_file():
        raise NovelcraftError(
            "no config.json: give a local Hugging Face model folder (base_model or model)", path=hf_dir, step="export"
        )
    template = ollama_template(hf_dir, recipe.modelfile.template, recipe.adapter)
    gguf = _convert(
        py,
        env,
        [llamacpp.converter(), hf_dir, "--outtype", recipe.outtype],
        run_dir / f"model-{outtype}.gguf",
        "convert_hf_to_gguf.py",
    )
    files[outtype] = gguf
    if method == "adapter":
        assert recipe.adapter is not None
        files["adapter"] = _convert(
            py,
            env,
            [llamacpp.converter("convert_lora_to_gguf.py"), "--base", hf_dir, recipe.adapter, "--outtype", "f16"],
            run_dir / "adapter-F16.gguf",
            "convert_lora_to_gguf.py",
        )
    for qtype in recipe.quantizations:
        assert quantizer is not None
        files[qtype] = llamacpp.quantize(gguf, run_dir / f"model-{qtype}.gguf", qtype, quantizer)
    if merged is not None and not recipe.keep_merged:
        shutil.rmtree(merged, ignore_errors=True)
    if recipe.modelfile.enabled:
        pick = recipe.modelfile.quantization or (recipe.quantizations[0] if recipe.quantizations else outtype)
        key = pick if pick in files else pick.upper()
        modelfile = render_modelfile(
            f"./{files[key].name}",
            adapter=f"./{files['adapter'].name}" if "adapter" in files else None,
            template=template,
            system=recipe.modelfile.system_text(),
            parameters=recipe.modelfile.parameters,
        )
        files["Modelfile"] = atomic_write_text(run_dir / "Modelfile", modelfile)
    report = {
        "method": method,
        "source": str(hf_dir if merged is None else recipe.adapter),
        "base_model": str(base) if str(base) else None,
        "llama_cpp_python": llamacpp.LLAMA_CPP_PYTHON_VERSION,
        "files": {k: {"file": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for k, p in files.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    atomic_write_json(run_dir / "export.json", report)
    return report
