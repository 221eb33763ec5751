#!/usr/bin/env bash
# Fresh machine -> the whole test suite, slow real-model and real-tool tests included.
# Installs everything it needs first: .venv with the dev, llm, vllm and bench extras, and the cached
# Axolotl / MS-SWIFT virtualenvs (scripts/toolenv.sh; about 1 s when they already exist).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "${NOVELCRAFT_TEST_EXTRAS:-dev,llm,vllm,bench}"
bash scripts/toolenv.sh axolotl swift >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/python -m pytest -q "$@"
