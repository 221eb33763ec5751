#!/usr/bin/env bash
# Fresh machine -> the whole test suite (installs everything it needs into .venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/python -m pytest -q "$@"
