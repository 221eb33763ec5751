#!/usr/bin/env bash
# Fresh machine -> the whole test suite, slow real-model and real-tool tests included.
# Installs what it needs first: .venv with the dev, llm, vllm, bench and ray extras. The Axolotl / MS-SWIFT
# virtualenvs are built (and cached, scripts/toolenv.sh) only when a test that runs those tools starts, so
# `bash scripts/test.sh -m "not slow"` builds none of them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "${NOVELCRAFT_TEST_EXTRAS:-dev,llm,vllm,bench,ray}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/python -m pytest -q "$@"
