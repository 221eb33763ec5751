"""llama.cpp from PyPI alone: the pinned ``llama-cpp-python`` sdist, its converters and a cached ``llama-quantize``.

The sdist carries ``vendor/llama.cpp`` with ``convert_hf_to_gguf.py``, ``convert_lora_to_gguf.py``, gguf-py and
the sources of ``tools/quantize``. It is downloaded once with pip (``--require-hashes``: the pinned SHA-256 is
checked by pip and again here), unpacked under ``$NOVELCRAFT_LLAMACPP_DIR`` (default
``~/.cache/novelcraft/llama.cpp``), and ``llama-quantize`` is built there with cmake and ninja (the PyPI
``cmake`` / ``ninja`` packages, or the system's), like the Axolotl / MS-SWIFT tool venvs: a complete build is
marked, reused, and never half-used.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import NovelcraftError, setup_hint
from ..io import sha256_file

log = logging.getLogger(__name__)

#: the pinned llama-cpp-python sdist whose vendored llama.cpp novelcraft uses, and its SHA-256 (PyPI).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
#: written last: a source tree or build without it is an interrupted one.
SOURCE_MARKER = ".novelcraft-llamacpp-source"
BUILD_MARKER = ".novelcraft-llama-quantize"
#: cmake options of the quantize build (portable: no -march=native; no server, tests, examples or curl).
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_OPENMP=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)


class LlamaCppError(NovelcraftError):
    """The llama.cpp sources, a converter or ``llama-quantize`` are missing or failed."""


def llamacpp_root() -> Path:
    """Where the sources and the build live (``$NOVELCRAFT_LLAMACPP_DIR`` or ``~/.cache/novelcraft/llama.cpp``)."""
    return Path(os.environ.get("NOVELCRAFT_LLAMACPP_DIR") or Path.home() / ".cache" / "novelcraft" / "llama.cpp")


def _home() -> Path:
    return llamacpp_root() / f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"


def vendor_dir() -> Path:
    """``vendor/llama.cpp`` of the unpacked sdist (it may not exist yet: see :func:`ensure_sources`)."""
    return _home() / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"


def sources_ready() -> bool:
    """Whether the verified sources are unpacked."""
    return (_home() / SOURCE_MARKER).is_file() and (vendor_dir() / "convert_hf_to_gguf.py").is_file()


def ensure_sources() -> Path:
    """The unpacked ``vendor/llama.cpp``: downloads the pinned sdist with pip (hash-checked) the first time."""
    if sources_ready():
        return vendor_dir()
    home = _home()
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} --hash=sha256:{SDIST_SHA256}\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--require-hashes", "-r", str(req), "-d", tmp]
        log.info("downloading llama-cpp-python %s (sdist, ~77 MB)", LLAMA_CPP_PYTHON_VERSION)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if not archives:
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise LlamaCppError(f"pip could not download the llama-cpp-python sdist: {tail}", step="llama.cpp")
        digest = sha256_file(archives[0])
        if digest != SDIST_SHA256:
            raise LlamaCppError(f"sdist SHA-256 {digest} is not the pinned {SDIST_SHA256}", path=archives[0])
        shutil.rmtree(home / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}", ignore_errors=True)
        with tarfile.open(archives[0]) as tar:
            tar.extractall(home, filter="data")
    (home / SOURCE_MARKER).write_text(f"{SDIST_SHA256}\n", encoding="utf-8")
    return vendor_dir()


def converter(name: str = "convert_hf_to_gguf.py") -> Path:
    """A converter script of the vendored llama.cpp (``convert_hf_to_gguf.py`` or ``convert_lora_to_gguf.py``)."""
    path = ensure_sources() / name
    if not path.is_file():
        raise LlamaCppError(f"no {name} in the llama.cpp sources", path=vendor_dir(), step="llama.cpp")
    return path


def converter_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a converter run: the vendored gguf-py first on ``PYTHONPATH`` (it matches the scripts)."""
    env = dict(base if base is not None else os.environ)
    gguf_py = str(ensure_sources() / "gguf-py")
    env["PYTHONPATH"] = gguf_py + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def build_dir() -> Path:
    """The cmake build folder of ``llama-quantize``."""
    return _home() / "build"


def quantize_binary() -> Path | None:
    """The cached ``llama-quantize`` when its build is complete, else None."""
    binary = build_dir() / "bin" / "llama-quantize"
    return binary if (build_dir() / BUILD_MARKER).is_file() and binary.is_file() else None


def _tool(name: str) -> str:
    # the PyPI wheels put cmake / ninja next to this interpreter; else the system's
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if not found:
        raise LlamaCppError(
            f"building llama-quantize needs {name} ({setup_hint('dev,export')})",
            step="llama-quantize",
        )
    return found


def build_quantize(jobs: int | None = None, log_file: Path | None = None) -> Path:
    """Build ``llama-quantize`` from the vendored sources (about 5-20 minutes on 2 cores) and mark it done."""
    cached = quantize_binary()
    if cached is not None:
        return cached
    src = ensure_sources()
    out = build_dir()
    log_file = log_file or _home() / "build.log"
    cmake, ninja = _tool("cmake"), _tool("ninja")
    steps = [
        [cmake, "-S", str(src), "-B", str(out), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", *CMAKE_OPTIONS],
        [cmake, "--build", str(out), "--target", "llama-quantize", "-j", str(jobs or os.cpu_count() or 2)],
    ]
    log.info("building llama-quantize in %s (log: %s)", out, log_file)
    with open(log_file, "a", encoding="utf-8") as fh:
        for cmd in steps:
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
            if rc != 0:
                raise LlamaCppError(f"{' '.join(cmd[:2])} exited with status {rc} (log: {log_file})", step="build")
    binary = out / "bin" / "llama-quantize"
    if not binary.is_file():
        raise LlamaCppError(f"the build wrote no llama-quantize (log: {log_file})", path=out, step="build")
    (out / BUILD_MARKER).write_text(f"llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}\n", encoding="utf-8")
    return binary


def find_quantize(build: bool = False) -> Path:
    """The cached ``llama-quantize``; with ``build`` it is built when missing, else the error says how."""
    found = quantize_binary()
    if found is not None:
        return found
    if build:
        return build_quantize()
    raise LlamaCppError(
        f"llama-quantize is not built yet in {build_dir()}: run `novelcraft export RECIPE --build-quantize` once "
        "(builds it from the llama-cpp-python sdist with cmake + ninja, ~5-20 minutes)",
        step="llama-quantize",
    )


def quantize(source: Path, target: Path, qtype: str, binary: Path, threads: int | None = None) -> Path:
    """Quantize a GGUF file to ``qtype`` (Q8_0, Q5_K_M, Q4_K_M...) with ``llama-quantize``, atomically."""
    tmp = target.with_name(f".{target.name}.partial")
    cmd = [str(binary), str(source), str(tmp), qtype, str(threads or os.cpu_count() or 1)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise LlamaCppError(f"llama-quantize {qtype} exited with status {proc.returncode}: {tail}", path=source)
    tmp.replace(target)
    return target
